"""Photo metadata (EXIF) as a record's `fields`: capture time, camera, lens, orientation and
GPS position, from JPEG, TIFF, HEIC/HEIF, AVIF, WebP and TIFF-based camera RAW (DNG, NEF,
CR2, ARW, ...). Missing or malformed tags are left out, never an error."""

from __future__ import annotations

import io
import os
import re
from datetime import datetime
from typing import Any, Union

from PIL import Image

from .formats import looks_like_heif

# A file path, its bytes, or an opened (not necessarily decoded) PIL image.
PhotoSource = Union[str, os.PathLike, bytes, Image.Image]

_MAKE, _MODEL, _ORIENTATION, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL, _SUBSEC_ORIGINAL = 0x9003, 0x9011, 0x9291
_LENS_MAKE, _LENS_MODEL = 0xA433, 0xA434
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON = 1, 2, 3, 4
_OFFSET = re.compile(r"^[+-]\d{2}:\d{2}$")
# Formats whose EXIF sits in the header. Not PNG: Pillow decodes a whole PNG to look for an
# eXIf chunk after the pixels, which would double the cost of every PNG for a rare tag.
EXIF_FORMATS = ("JPEG", "TIFF", "WEBP", "HEIF", "AVIF")


def photo_fields(source: PhotoSource) -> dict[str, Any]:
    """`taken` (ISO-8601, with the UTC offset when the camera recorded one, else the camera's
    local wall-clock time), `make`, `camera` (model), `lens`, `orientation` (EXIF 1-8) and
    `lat`/`lon` (signed decimal degrees). Only the keys that the file has."""
    exif = _exif(source)
    if exif is None or not len(exif):
        return {}
    ifd = _sub_ifd(exif, _EXIF_IFD)
    out: dict[str, Any] = {}
    taken = _taken(ifd.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME), ifd.get(_OFFSET_TIME_ORIGINAL))
    if taken:
        out["taken"] = taken
    for key, value in (("make", exif.get(_MAKE)), ("camera", exif.get(_MODEL)),
                       ("lens", ifd.get(_LENS_MODEL))):
        text = _text(value)
        if text:
            out[key] = text
    orientation = exif.get(_ORIENTATION)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        out["orientation"] = orientation
    out.update(_gps(_sub_ifd(exif, _GPS_IFD)))
    return out


def _exif(source: PhotoSource) -> Image.Exif | None:
    try:
        if isinstance(source, Image.Image):
            return source.getexif()
        data = source if isinstance(source, bytes) else _head(source)
        if data[:4] in (b"II*\0", b"MM\0*", b"IIRO", b"IIU\0"):
            # TIFF and TIFF-based RAW: read the IFDs directly (Pillow may not decode the pixels).
            exif = Image.Exif()
            exif.load(data if data[:4] in (b"II*\0", b"MM\0*") else b"II*\0" + data[4:])
            return exif
        if looks_like_heif(data):
            from .heif import register_heif

            register_heif()
        Image.init()
        # Pillow refuses a format name it has no plugin for (HEIF before pillow-heif registers).
        with Image.open(io.BytesIO(data), formats=[f for f in EXIF_FORMATS if f in Image.OPEN]) as im:
            return im.getexif()
    except Exception:  # metadata is a bonus: a file Pillow cannot parse simply has none
        return None


def _head(path: str | os.PathLike, limit: int = 64 * 1024 * 1024) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


def _sub_ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return exif.get_ifd(tag) or {}
    except Exception:
        return {}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = " ".join(value.replace("\0", " ").split())
    return text or None


def _taken(value: Any, offset: Any) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" (+ "+HH:MM") -> ISO-8601; None when absent or invalid."""
    text = _text(value)
    if not text:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None  # "0000:00:00 00:00:00" and other blanks
    if moment.year < 1826:  # older than photography
        return None
    iso = moment.isoformat(timespec="seconds")
    zone = _text(offset)
    return iso + zone if zone and _OFFSET.match(zone) else iso


def _gps(gps: dict) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, ref_tag, value_tag, negative, limit in (("lat", _GPS_LAT_REF, _GPS_LAT, "S", 90),
                                                     ("lon", _GPS_LON_REF, _GPS_LON, "W", 180)):
        degrees = _degrees(gps.get(value_tag))
        if degrees is None or degrees > limit:
            continue
        ref = _text(gps.get(ref_tag)) or ""
        out[key] = round(-degrees if ref.upper().startswith(negative) else degrees, 7)
    return out


def _degrees(value: Any) -> float | None:
    try:
        d, m, s = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if any(x != x or x < 0 for x in (d, m, s)):  # NaN from a 0/0 rational
        return None
    return d + m / 60 + s / 3600
