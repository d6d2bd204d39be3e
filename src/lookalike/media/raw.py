"""Camera RAW files through rawpy (LibRaw): the camera's embedded JPEG preview when it is
large enough for the model, else a half-size demosaic of the sensor data."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..errors import Busy, ImageLoadError
from ..extras import require

# A preview whose short side reaches this is used instead of demosaicing: the model sees
# at most a few hundred pixels, and a 24 MP DNG's full-size preview loads in 0.06 s of CPU
# where LibRaw's half-size demosaic takes 0.36 s (measured here, see docs/photos.md).
MIN_PREVIEW_SIDE = 320

# LibRaw's `flip` -> the transpose that shows the image upright (the demosaic applies it
# itself; the embedded preview is stored as the sensor saw it).
_FLIP = {3: Image.Transpose.ROTATE_180, 5: Image.Transpose.ROTATE_90, 6: Image.Transpose.ROTATE_270}


def decode_raw(data: bytes, name: str, draft_size: int | None = None, min_preview: int = MIN_PREVIEW_SIDE,
               pixel_limit: int | None = None) -> Image.Image:
    """Upright RGB image of a RAW file's content, with `info["original_size"]` the sensor's
    (width, height). `draft_size`: short side the caller needs (a large preview is decoded at
    reduced scale); `min_preview`: smallest preview worth using (0 forces the demosaic);
    `pixel_limit`: the largest sensor (width x height) decoded, checked before any decoding."""
    from ..imaging import decode_budget, decoded_bytes

    rawpy = require("rawpy", "reading camera RAW files", "photos")
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            original = (sizes.height, sizes.width) if sizes.flip in (5, 6) else (sizes.width, sizes.height)
            if pixel_limit and sizes.raw_width * sizes.raw_height > pixel_limit:
                raise ImageLoadError(name, f"too large: {sizes.raw_width}x{sizes.raw_height} sensor pixels "
                                           f"exceeds the {pixel_limit:,} pixel limit")
            # LibRaw holds the 16-bit mosaic plus the half-size RGB result.
            with decode_budget().reserve(sizes.raw_width * sizes.raw_height * 2 + decoded_bytes("RGB", original) // 4):
                image = _preview(raw, rawpy, min_preview, draft_size) if min_preview else None
                if image is None:
                    rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
                    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    except (ImageLoadError, Busy):
        raise
    except rawpy.LibRawFileUnsupportedError:
        raise ImageLoadError(name, "not a camera RAW file LibRaw can read") from None
    except (rawpy.LibRawError, OSError, ValueError) as e:
        raise ImageLoadError(name, f"corrupt RAW data ({type(e).__name__}: {' '.join(str(e).split())[:100]})") from None
    except MemoryError:
        raise ImageLoadError(name, "too large to decode in memory") from None
    image.info["original_size"] = original
    return image


def _preview(raw, rawpy, min_side: int, draft_size: int | None) -> Image.Image | None:
    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, ValueError):
        return None
    if thumb.format != rawpy.ThumbFormat.JPEG:
        return None
    try:
        jpeg = Image.open(io.BytesIO(thumb.data), formats=("JPEG",))
        if min(jpeg.size) < min_side:
            return None
        if draft_size:
            jpeg.draft("RGB", (draft_size, draft_size))  # keeps the short side >= draft_size
        # Fresh pixels without the preview's own metadata: LibRaw's flip is the orientation.
        im = Image.fromarray(np.asarray(jpeg.convert("RGB")), "RGB")
    except (OSError, ValueError, SyntaxError):
        return None  # a damaged preview: the sensor data may still be fine
    turn = _FLIP.get(raw.sizes.flip)
    return im.transpose(turn) if turn is not None else im
