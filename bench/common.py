"""Shared by the HTTP benchmarks (`python bench/<name>.py` puts this folder on sys.path)."""

from __future__ import annotations

import io
from pathlib import Path

from lookalike import Library
from lookalike.samples import build_gallery, unseen_edits


def indexed_sample_gallery(root: Path) -> Path:
    """Build the 98-image sample gallery under `root` and index it; returns the library."""
    build_gallery(root / "gallery")
    with Library.open(root / "lib") as lib:
        lib.add([root / "gallery"])
    return root / "lib"


def unseen_queries() -> list[bytes]:
    """JPEG bytes of edits the gallery does not hold (greyscale, occluded, tight crop)."""
    out = []
    for _, q in unseen_edits().values():
        buf = io.BytesIO()
        q.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out
