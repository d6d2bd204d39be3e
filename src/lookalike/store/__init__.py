"""Store backends: one protocol (`VectorStore`), chosen by a URI-like spec."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidQuery
from .base import ImageRecord, ScoredIds, SearchFilter, Upsert, VectorStore
from .embedded import EmbeddedStore


def open_store(spec: str | VectorStore | None, library_dir: Path, **options) -> VectorStore:
    """`None`/"embedded" -> the SQLite store inside `library_dir`; a store object is used as-is.
    Other backends (e.g. "milvus:...") register their scheme in `SCHEMES`; `options` (e.g. a
    Milvus `token`) go to the backend's factory."""
    if spec is None or spec == "embedded":
        return EmbeddedStore(library_dir)
    if not isinstance(spec, str):
        return spec
    scheme = spec.split(":", 1)[0]
    if scheme not in SCHEMES:
        raise InvalidQuery(f"unknown store {spec!r} (known: embedded, {', '.join(s + ':...' for s in SCHEMES)})")
    return SCHEMES[scheme](spec, library_dir, **options)


def library_exists(spec: str | VectorStore | None, library_dir: Path) -> bool:
    """Whether opening `spec` finds a library rather than creating one. Only the embedded
    store can tell without connecting; other backends answer when opened (no meta: none)."""
    if spec is None or spec == "embedded":
        return EmbeddedStore.exists(library_dir)
    return True


def _milvus(spec: str, library_dir: Path, token: str | None = None) -> VectorStore:
    from ..extras import require

    require("pymilvus", feature="the Milvus store", extra="milvus")
    from .milvus import MilvusStore  # imported on use: the embedded path never loads pymilvus

    return MilvusStore.from_spec(spec, token=token)


# scheme -> factory(spec, library_dir, **options). Filled by optional backends.
SCHEMES: dict = {"milvus": _milvus}

__all__ = ["EmbeddedStore", "ImageRecord", "ScoredIds", "SearchFilter", "Upsert", "VectorStore", "library_exists",
           "open_store"]
