"""HEIF/HEIC through pillow-heif, registered with Pillow once, on the first HEIF file."""

from __future__ import annotations

import threading

from ..extras import require

_lock = threading.Lock()
_registered = False


def register_heif() -> None:
    """Teach Pillow to open HEIF/HEIC (libheif inside the pillow-heif wheel). Cheap after
    the first call; raises MissingExtra when pillow-heif is not installed."""
    global _registered
    if _registered:
        return
    with _lock:
        if not _registered:
            pillow_heif = require("pillow_heif", "reading HEIC/HEIF images", "photos")
            pillow_heif.register_heif_opener()
            _registered = True
