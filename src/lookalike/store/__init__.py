"""Store backends: one protocol (`VectorStore`), chosen by a URI-like spec."""

from __future__ import annotations

from pathlib import Path

from ..errors import LookalikeError
from .base import ImageRecord, ScoredIds, SearchFilter, Upsert, VectorStore
from .embedded import EmbeddedStore


def open_store(spec: str | VectorStore | None, library_dir: Path) -> VectorStore:
    """`None`/"embedded" -> the SQLite store inside `library_dir`; a store object is used as-is.
    Other backends (e.g. "milvus:...") register their scheme in `SCHEMES`."""
    if spec is None or spec == "embedded":
        return EmbeddedStore(library_dir)
    if not isinstance(spec, str):
        return spec
    scheme = spec.split(":", 1)[0]
    if scheme not in SCHEMES:
        raise LookalikeError(f"unknown store {spec!r} (known: embedded, {', '.join(s + ':...' for s in SCHEMES)})")
    return SCHEMES[scheme](spec, library_dir)


# scheme -> factory(spec, library_dir). Filled by optional backends.
SCHEMES: dict = {}

__all__ = ["EmbeddedStore", "ImageRecord", "ScoredIds", "SearchFilter", "Upsert", "VectorStore", "open_store"]
