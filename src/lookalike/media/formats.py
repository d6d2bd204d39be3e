"""Which file names Lookalike indexes, and which library decodes each kind.

Pillow decodes the common still formats (AVIF included: Pillow >= 11.3 reads it itself);
HEIF/HEIC, camera RAW and video are decoded by their own libraries, chosen by extension
(RAW files are TIFF-like and videos are containers, so their bytes alone would mislead
Pillow's auto-detection)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

MediaKind = Literal["image", "heif", "raw", "video"]

PILLOW_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".avif"}
)
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif", ".heics", ".heifs"})
# LibRaw reads many more; these are the extensions cameras and phones write.
RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf",
     ".pef", ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".erf", ".kdc", ".dcr", ".mrw", ".mef", ".mos",
     ".rwl", ".raw"}
)
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".3gp", ".3g2", ".mts", ".m2ts", ".ts",
     ".mpg", ".mpeg", ".wmv", ".flv", ".ogv"}
)
STILL_EXTENSIONS = PILLOW_EXTENSIONS | HEIF_EXTENSIONS | RAW_EXTENSIONS
MEDIA_EXTENSIONS = STILL_EXTENSIONS | VIDEO_EXTENSIONS

NO_EXTENSION = "(no extension)"


def extension(path: str | os.PathLike) -> str:
    """The lower-case extension used to count skipped files ("(no extension)" when none)."""
    return Path(path).suffix.lower() or NO_EXTENSION


def media_kind(path: str | os.PathLike) -> MediaKind | None:
    """How a file is decoded, from its name; None for files Lookalike does not index."""
    ext = Path(path).suffix.lower()
    if ext in PILLOW_EXTENSIONS:
        return "image"
    if ext in HEIF_EXTENSIONS:
        return "heif"
    if ext in RAW_EXTENSIONS:
        return "raw"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def raw_format(path: str | os.PathLike) -> str | None:
    """The `format` field of a camera RAW file: its extension ("dng", "nef", ...); None otherwise."""
    ext = Path(path).suffix.lower()
    return ext[1:] if ext in RAW_EXTENSIONS else None


def video_format(path: str | os.PathLike) -> str:
    """The `format` field of a video's frames: the container's extension ("mp4", "mov", ...)."""
    return Path(path).suffix.lower()[1:] or "video"


def looks_like_heif(data: bytes) -> bool:
    """An ISO-BMFF `ftyp` box naming a HEIF brand (AVIF is left to Pillow's own plugin)."""
    if data[4:8] != b"ftyp" or data[8:12] in (b"avif", b"avis"):
        return False
    brands = data[8:12] + data[16:64]
    return any(b in brands for b in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"))
