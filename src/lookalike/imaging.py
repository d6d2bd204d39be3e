"""Turning whatever a user hands us (a path, bytes, a PIL image, an array) into a clean RGB
image, or an `ImageLoadError` with a short reason. Nothing here knows about models."""

from __future__ import annotations

import errno
import io
import os
import re
import struct
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import max_pixels
from .errors import ImageLoadError, LookalikeError
from .media.formats import STILL_EXTENSIONS, looks_like_heif, media_kind

# A user's source of an image: a file path, encoded bytes, a decoded image or an HxW(xC) array.
ImageSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

# Pillow warns (it does not fail) about oversized images, which our own pixel limit handles,
# and about malformed EXIF blocks, which we ignore. Filters are installed once: per-call
# `catch_warnings` is not thread-safe and decoding runs in worker threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")

# Signatures of formats we read: a file that starts like one but will not open is corrupt,
# not "not an image".
_SIGNATURES = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"GIF8": "GIF", b"BM": "BMP",
               b"II*\0": "TIFF", b"MM\0*": "TIFF"}

# Still images: Pillow's formats, HEIF/HEIC and camera RAW (media/formats.py; video is apart).
IMAGE_EXTENSIONS = STILL_EXTENSIONS


def is_image_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def read_file(path: str | os.PathLike) -> bytes:
    """Read a whole file, turning OS errors into one-phrase reasons."""
    name = os.fsdecode(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageLoadError(name, "file not found") from None
    except IsADirectoryError:
        raise ImageLoadError(name, "is a directory, not a file") from None
    except PermissionError:
        raise ImageLoadError(name, "permission denied") from None
    except OSError as e:
        reason = "too many levels of symbolic links" if e.errno == errno.ELOOP else e.strerror
        raise ImageLoadError(name, f"unreadable ({reason})") from None
    if not data:
        raise ImageLoadError(name, "empty file")
    return data


def decode_image(data: bytes, name: str = "<bytes>", draft_size: int | None = None) -> Image.Image:
    """Decode encoded image bytes to RGB. `draft_size` lets JPEG decode at a reduced scale
    (at least that many pixels on the short side), which is several times faster."""
    if not data:
        raise ImageLoadError(name, "empty file")
    if media_kind(name) == "raw":
        return _decode_raw(data, name, draft_size)
    if looks_like_heif(data):
        from .media.heif import register_heif

        register_heif()
    try:
        im = Image.open(io.BytesIO(data))
        _check_size(im, name)
        original = _oriented_size(im)
        if draft_size and im.format == "JPEG":
            im.draft("RGB", _draft_target(im.size, draft_size))
        im.load()
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        fmt = _signature(data)
        if fmt:
            raise ImageLoadError(name, f"corrupt {fmt} data (the header cannot be parsed)") from None
        raise ImageLoadError(name, f"not an image (unrecognised format{_sniff(data)})") from None
    except Image.DecompressionBombError as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{int(m.group(1)):,} pixels" if m else "the image"
        raise ImageLoadError(name, f"too large: {pixels} exceeds Pillow's decompression-bomb limit") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        msg = str(e).lower()
        if "decompressed data too large" in msg or "too much memory" in msg:
            raise ImageLoadError(name, "too large: a metadata block decompresses past the safety limit (decompression bomb)") from None
        if any(w in msg for w in ("truncated", "premature", "broken data stream", "could not create decoder", "unexpected end")):
            raise ImageLoadError(name, "truncated image data") from None
        raise ImageLoadError(name, f"corrupt image data ({_one_line(e)})") from None
    except MemoryError:
        raise ImageLoadError(name, "too large to decode in memory") from None
    rgb = to_rgb(im, name)
    rgb.info["original_size"] = original  # draft decoding shrinks the pixels, not the record
    return rgb


def _decode_raw(data: bytes, name: str, draft_size: int | None) -> Image.Image:
    from .media.raw import decode_raw

    im = decode_raw(data, name, draft_size)
    _check_size(im, name)
    original = im.info["original_size"]
    rgb = to_rgb(im, name)
    rgb.info["original_size"] = original
    return rgb


def load_image(source: ImageSource, draft_size: int | None = None) -> Image.Image:
    """Any supported source -> RGB PIL image with EXIF orientation applied."""
    if isinstance(source, Image.Image):
        _check_size(source, "<image>")
        return to_rgb(source, "<image>")
    if isinstance(source, np.ndarray):
        im = _array_to_image(source)
        _check_size(im, "<array>")
        return to_rgb(im, "<array>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), "<bytes>", draft_size)
    name = os.fsdecode(source)
    return decode_image(read_file(source), name, draft_size)


def to_rgb(im: Image.Image, name: str = "<image>") -> Image.Image:
    """Normalise orientation, bit depth, palette, alpha and colour space to 8-bit RGB."""
    try:
        im = ImageOps.exif_transpose(im) or im
    except Exception:  # a malformed EXIF block must not cost us the picture
        pass
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        im = _high_depth_to_l(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels carry arbitrary colours: show them on white, as viewers do.
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(canvas, rgba)
    if im.mode != "RGB":
        try:
            im = im.convert("RGB")
        except (ValueError, OSError) as e:
            raise ImageLoadError(name, f"unsupported colour mode {im.mode} ({e})") from None
    return im


def _check_size(im: Image.Image, name: str) -> None:
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageLoadError(name, f"invalid dimensions {w}x{h}")
    limit = max_pixels()
    if w * h > limit:
        raise ImageLoadError(name, f"too large: {w}x{h} pixels exceeds the {limit:,} pixel limit")


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    try:
        rotated = im.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap axes
    except Exception:
        rotated = False
    return (h, w) if rotated else (w, h)


def original_size(im: Image.Image) -> tuple[int, int]:
    """Full-resolution (width, height) of a decoded image, even if it was draft-decoded."""
    return tuple(im.info.get("original_size", im.size))  # type: ignore[return-value]


def _draft_target(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    w, h = size
    scale = short_side / max(1, min(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _high_depth_to_l(im: Image.Image) -> Image.Image:
    arr = np.asarray(im, dtype=np.float32)
    top = float(arr.max()) if arr.size else 0.0
    if top > 255:
        arr = arr * (255.0 / (65535.0 if top <= 65535 else top))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")


def _array_to_image(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageLoadError("<array>", f"expected an HxW, HxWx3 or HxWx4 array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)  # no NaN/inf casts
        if a.size and a.max() <= 1.0:
            a = a * 255.0
        arr = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _signature(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((fmt for sig, fmt in _SIGNATURES.items() if data.startswith(sig)), "")


def _one_line(e: BaseException, limit: int = 120) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith(b"%pdf"):
        return ": looks like a PDF"
    if head.startswith((b"<!doctype html", b"<html")):
        return ": looks like HTML"
    if head.startswith((b"<?xml", b"<svg")):
        return ": looks like XML/SVG, which is not supported"
    try:
        head.decode("utf-8")
        return ": looks like text"
    except UnicodeDecodeError:
        return ""


# (left, top, right, bottom) as fractions of the image's width and height, 0..1.
CropBox = tuple[float, float, float, float]


def crop_relative(im: Image.Image, box: CropBox) -> Image.Image:
    """The region `box` of an (oriented) image. Fractions rather than pixels, so a client that
    shows the image at any scale can send the box it drew."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise LookalikeError(f"crop box must be four numbers x0,y0,x1,y1, got {box!r}") from None
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise LookalikeError(f"crop box {x0:g},{y0:g},{x1:g},{y1:g} must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    w, h = im.size
    left, top = int(x0 * w), int(y0 * h)
    right, bottom = max(left + 1, round(x1 * w)), max(top + 1, round(y1 * h))
    return im.crop((left, top, min(right, w), min(bottom, h)))
