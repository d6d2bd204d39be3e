"""Turning whatever a user hands us (a path, bytes, a PIL image, an array) into a clean RGB
image, or an `ImageLoadError` with a short reason. Nothing here knows about models."""

from __future__ import annotations

import errno
import io
import os
import re
import struct
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import decode_budget_bytes, max_pixels
from .errors import Busy, ImageLoadError
from .media.formats import STILL_EXTENSIONS, looks_like_heif, media_kind, raw_format

if TYPE_CHECKING:
    import ctypes

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

# The only formats Pillow may decode, everywhere (uploads, URLs, indexed files): formats with
# external helpers (EPS/PS run Ghostscript) or rare, little-tested decoders are never tried.
# AVIF is Pillow's own plugin; HEIF is pillow-heif's, registered on the first HEIF file (a name
# Pillow has no plugin for yet is left out, see `open_image`). Camera RAW (rawpy) and video
# (PyAV) are decoded by their own libraries, chosen by extension (media/formats.py), never
# through Pillow's auto-detection.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
# File extension an upload of each allowed format is stored under.
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tiff",
                     "AVIF": ".avif", "HEIF": ".heic"}
MAX_FRAMES = 1000  # animated PNG / multi-page TIFF: more frames than this is refused unread

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


def open_image(fp, formats: tuple[str, ...] = ALLOWED_FORMATS) -> Image.Image:
    """`Image.open` limited to the allowed formats (lazy: reads the header only)."""
    return Image.open(fp, formats=_available(formats))


def _available(formats: tuple[str, ...]) -> list[str]:
    # Pillow raises KeyError for a format name without a plugin (HEIF until pillow-heif
    # registers); AVIF's plugin is only loaded by Image.init().
    if not all(f in Image.OPEN for f in formats):
        Image.init()
    return [f for f in formats if f in Image.OPEN]


def encoded_format(data: bytes) -> str | None:
    """The allowed format of encoded bytes (from the header), or None."""
    try:
        with open_image(io.BytesIO(data)) as im:
            return im.format
    except (OSError, ValueError, SyntaxError, struct.error, Image.DecompressionBombError):
        return None


class DecodeBudget:
    """Bounds the memory all concurrent decodes may hold: each decode reserves its estimated
    bytes first and waits (up to `wait_s`, then `Busy`) while others hold the budget. One image
    larger than the whole budget waits until it can decode alone."""

    def __init__(self, total_bytes: int, wait_s: float = 30.0) -> None:
        self.total = max(1, total_bytes)
        self.wait_s = wait_s
        self.used = 0
        self._cond = threading.Condition()

    @contextmanager
    def reserve(self, nbytes: int):
        n = min(max(1, nbytes), self.total)
        with self._cond:
            if not self._cond.wait_for(lambda: self.used + n <= self.total, timeout=self.wait_s):
                raise Busy("the server is decoding too many large images at once; try again shortly")
            self.used += n
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                self._cond.notify_all()
            if n >= TRIM_AFTER_BYTES:
                release_free_memory()


TRIM_AFTER_BYTES = 64 * 1000 * 1000
_LIBC: ctypes.CDLL | Literal[False] | None = None  # False: no glibc malloc_trim here


def release_free_memory() -> None:
    """Give freed heap memory back to the OS. glibc keeps what large decodes freed in its
    per-thread arenas, so without this a server's RSS stays at its peak after a burst of big
    images; malloc_trim returns it (a few ms). A no-op where there is no glibc."""
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018 - present only in glibc
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_BUDGET: DecodeBudget | None = None
_BUDGET_LOCK = threading.Lock()


def decode_budget() -> DecodeBudget:
    """The process's decode budget, sized from `$LOOKALIKE_DECODE_BUDGET_MB` when first needed
    (not at import), and sized again if the variable changes: a test or server that sets it
    after importing this module still gets its size."""
    global _BUDGET
    total = max(1, decode_budget_bytes())
    with _BUDGET_LOCK:
        if _BUDGET is None or _BUDGET.total != total:
            _BUDGET = DecodeBudget(total)
        return _BUDGET
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "CMYK": 4,
                    "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4, "LA": 4, "PA": 4}


def decoded_bytes(mode: str, size: tuple[int, int]) -> int:
    """Estimated peak bytes of decoding an image of this mode and size to RGB: the decoded
    pixels (4-byte cells for most modes in Pillow's storage) plus the RGB copy."""
    w, h = size
    return w * h * (max(4, _BYTES_PER_PIXEL.get(mode, 4)) + 4)


def decode_image(data: bytes, name: str = "<bytes>", draft_size: int | None = None,
                 pixel_limit: int | None = None) -> Image.Image:
    """Decode encoded image bytes to RGB. `draft_size` lets JPEG decode at a reduced scale
    (at least that many pixels on the short side), which is several times faster.
    `pixel_limit` (default `$LOOKALIKE_MAX_PIXELS`) is checked against the header before any
    pixel is decoded; a JPEG decoded at reduced scale is checked at that scale."""
    if not data:
        raise ImageLoadError(name, "empty file")
    if media_kind(name) == "raw":
        return _decode_raw(data, name, draft_size, pixel_limit)
    if looks_like_heif(data):
        from .media.heif import register_heif

        register_heif()
    try:
        im = open_image(io.BytesIO(data))
        _check_frames(im, name)
        original = None
        if draft_size and im.format == "JPEG":
            _check_size(im, name, max(pixel_limit or 0, max_pixels()))  # the absolute limit on the header
            original = _oriented_size(im)  # a JPEG's EXIF is in its header: nothing is decoded
            im.draft("RGB", _draft_target(im.size, draft_size))
            if USE_SIMPLEJPEG and im.mode in ("RGB", "L"):
                _check_size(im, name, pixel_limit)
                fast = _decode_jpeg_scaled(data, im, draft_size)
                if fast is not None:
                    fast.info["original_size"] = original
                    fast.info["format"] = "JPEG"
                    return fast
        # Before anything that may decode: PNG's getexif() loads the whole image to find an
        # eXIf chunk after the pixel data.
        _check_size(im, name, pixel_limit)
        with decode_budget().reserve(decoded_bytes(im.mode, im.size)):
            im.load()
            original = original or _oriented_size(im)
            rgb = to_rgb(im, name)
    except (ImageLoadError, Busy):
        raise
    except UnidentifiedImageError:
        signature = _signature(data)
        if signature:
            raise ImageLoadError(name, f"corrupt {signature} data (the header cannot be parsed)") from None
        raise ImageLoadError(name, f"not an image (unrecognised format{_sniff(data)})", kind="unsupported") from None
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
        raise ImageLoadError(name, f"corrupt image data ({one_line(e)})") from None
    except MemoryError:
        raise ImageLoadError(name, "too large to decode in memory") from None
    fmt = im.format
    rgb.info["original_size"] = original  # draft decoding shrinks the pixels, not the record
    rgb.info["format"] = fmt  # what the decoder recognised ("JPEG", "PNG", ...), whatever the name says
    return rgb


def _decode_raw(data: bytes, name: str, draft_size: int | None, pixel_limit: int | None) -> Image.Image:
    from .media.raw import decode_raw

    im = decode_raw(data, name, draft_size, pixel_limit=pixel_limit or max_pixels())
    original = im.info["original_size"]
    rgb = to_rgb(im, name)
    rgb.info["original_size"] = original
    rgb.info["format"] = (raw_format(name) or "raw").upper()  # DNG, NEF, CR2, ...: the header alone says TIFF
    return rgb


# JPEGs decoded for the model go through simplejpeg (libjpeg-turbo with DCT-domain scaling,
# like Pillow's draft mode, minus Pillow's per-image overhead: ~16 % less CPU per 7 MP photo,
# bench/decode_cost.py). Off, or simplejpeg missing: Pillow's draft mode does the same job.
USE_SIMPLEJPEG = True


def _decode_jpeg_scaled(data: bytes, header: Image.Image, draft_size: int) -> Image.Image | None:
    """RGB at the smallest DCT scale with both sides >= draft_size, EXIF orientation applied;
    None when simplejpeg is missing or refuses the file (Pillow then decodes it, and reports
    real damage in its own words)."""
    try:
        import simplejpeg
    except ImportError:
        return None
    try:
        with decode_budget().reserve(decoded_bytes("RGB", header.size)):  # header.size: the draft scale
            pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=draft_size, min_width=draft_size)
    except (ValueError, OSError):
        return None
    im = Image.fromarray(pixels, "RGB")
    try:
        orientation = header.getexif().get(0x0112)
    except Exception:  # a malformed EXIF block must not cost us the picture
        orientation = None
    transpose = _ORIENTATIONS.get(orientation or 1)
    return im.transpose(transpose) if transpose is not None else im


# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def load_image(source: ImageSource, draft_size: int | None = None, pixel_limit: int | None = None) -> Image.Image:
    """Any supported source -> RGB PIL image with EXIF orientation applied."""
    if isinstance(source, Image.Image):
        _check_size(source, "<image>")
        return to_rgb(source, "<image>")
    if isinstance(source, np.ndarray):
        im = _array_to_image(source)
        _check_size(im, "<array>")
        return to_rgb(im, "<array>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), "<bytes>", draft_size, pixel_limit)
    name = os.fsdecode(source)
    return decode_image(read_file(source), name, draft_size, pixel_limit)


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


def _check_size(im: Image.Image, name: str, limit: int | None = None) -> None:
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageLoadError(name, f"invalid dimensions {w}x{h}")
    limit = limit or max_pixels()
    if w * h > limit:
        raise ImageLoadError(name, f"too large: {w}x{h} pixels exceeds the {limit:,} pixel limit")


def _check_frames(im: Image.Image, name: str) -> None:
    # APNG states its frame count in a header chunk and TIFF pages are a cheap walk; GIF would
    # need a scan of the whole file, and only its first frame is ever decoded.
    if im.format in ("PNG", "TIFF"):
        frames = getattr(im, "n_frames", 1)
        if frames > MAX_FRAMES:
            raise ImageLoadError(name, f"too many frames: {frames:,} (limit {MAX_FRAMES:,})")


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    w, h = im.size
    try:
        rotated = im.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap axes
    except Exception:
        rotated = False
    return (h, w) if rotated else (w, h)


def image_format(im: Image.Image) -> str | None:
    """The decoder's name for the file format of a decoded image, lower case ("jpeg", "png")."""
    fmt = im.info.get("format") or im.format
    return str(fmt).lower() if fmt else None


def sniff_format(data: bytes) -> str | None:
    """The file format from the header alone (no pixel decoding), lower case; None if unknown."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return str(im.format).lower() if im.format else None
    except Exception:  # noqa: BLE001 - any unreadable header just has no format
        return None


def original_size(im: Image.Image) -> tuple[int, int]:
    """Full-resolution (width, height) of a decoded image, even if it was draft-decoded."""
    width, height = im.info.get("original_size", im.size)
    return width, height


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


def one_line(e: BaseException, limit: int = 120) -> str:
    """An exception as one line of at most `limit` characters, for user-facing reasons."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"%!ps", b"\xc5\xd0\xd3\xc6")):
        return ": looks like PostScript/EPS, which is not supported"
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
CropBox = tuple[float, float, float, float]  # same shape as engine/params.py's, which validates user input


def crop_relative(im: Image.Image, box: CropBox) -> Image.Image:
    """The region `box` of an (oriented) image. Fractions rather than pixels, so a client that
    shows the image at any scale can send the box it drew. User input is validated once, by
    `engine.params.parse_crop`, before it gets here; this only keeps the box inside the image."""
    x0, y0, x1, y1 = (min(1.0, max(0.0, float(v))) for v in box)
    w, h = im.size
    left, top = int(x0 * w), int(y0 * h)
    right, bottom = max(left + 1, round(x1 * w)), max(top + 1, round(y1 * h))
    return im.crop((left, top, min(right, w), min(bottom, h)))
