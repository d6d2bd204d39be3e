"""The one protocol every store backend implements (embedded SQLite, Milvus, ...).

A store keeps, per image, its metadata record and its feature vector, plus a few
library-wide settings (`meta`: model name, dimension, ...). The engine talks only to this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import LookalikeError
from ..filters import Expr, FieldTypes

Tags = list[tuple[str, float]]


@dataclass
class ImageRecord:
    path: str
    sha256: str
    size: int
    mtime: float
    width: int
    height: int
    tags: Tags = field(default_factory=list)
    added: float = 0.0
    id: int | None = None  # assigned by the store on first write
    # Flat JSON metadata of typed values (str, int, float, bool, ISO date str, list[str]):
    # file facts (folder, name, format, ...), EXIF, catalogue columns, DICOM tags. Filterable with `where`.
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def stored_id(self) -> int:
        """The id of a record read back from a store, where it is always set."""
        if self.id is None:
            raise ValueError(f"{self.path}: record has no id (never written to a store)")
        return self.id


@dataclass
class SearchFilter:
    """Restricts a search or listing; every set field must hold (AND).

    - `path_prefix`: path starts with this string (pass a folder with a trailing separator);
    - `labels`: at least one of the image's stored tags is exactly one of these labels;
    - `min_mtime` / `max_mtime`: file modification time (Unix seconds) within the bounds;
    - `expr`: a parsed `where` expression over the record's `fields` (`lookalike.filters.parse`)."""

    path_prefix: str | None = None
    labels: list[str] | None = None
    min_mtime: float | None = None
    max_mtime: float | None = None
    expr: Expr | None = None

    def is_empty(self) -> bool:
        return (not self.path_prefix and self.labels is None and self.min_mtime is None and self.max_mtime is None
                and self.expr is None)


# (image id, cosine similarity), best first.
ScoredIds = list[tuple[int, float]]


@dataclass
class Upsert:
    """Insert (record.id is None) or replace a record; `vector` None keeps the stored one.
    A record with an id that is not stored yet is inserted under that id when it has a vector
    (`migrate` keeps ids); later fresh ids are larger than any id stored so far."""

    record: ImageRecord
    vector: np.ndarray | None = None


@runtime_checkable
class VectorStore(Protocol):
    """Every capability the engine uses. A backend also offers `exists(location) -> bool`
    (a staticmethod: is there a library there, without creating one)."""

    def write_refusal(self) -> LookalikeError | None:
        """Why writes would fail now (read-only library, full disk, ...), or None: the engine
        asks before any model work."""
        ...

    def sync_index(self, progress: Callable[[int, int], None] | None = None) -> bool:
        """Bring a search index up to date now; True when searches use an ANN index that the
        store maintains itself (False: nothing to do)."""
        ...

    def field_types(self) -> FieldTypes:
        """Every `fields` name written to this library, with the types its values had: the
        names and types `where` expressions are checked against."""
        ...

    def get_meta(self) -> dict[str, str]: ...

    def set_meta(self, values: dict[str, str]) -> None: ...

    def count(self) -> int: ...

    def get(self, ids: Sequence[int]) -> dict[int, ImageRecord]: ...

    def find_path(self, path: str) -> ImageRecord | None: ...

    def find_sha(self, sha256: str) -> list[ImageRecord]: ...

    def hashes(self) -> dict[str, list[int]]:
        """sha256 -> ids, for recognising moved files and copies without re-embedding."""
        ...

    def iter_records(self, offset: int = 0, limit: int | None = None,
                     where: SearchFilter | None = None) -> Iterator[ImageRecord]:
        """Records in id order (`offset`/`limit` count matching records)."""
        ...

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """Stored vectors for `ids`, in that order (float32 [len(ids), dim])."""
        ...

    def write(self, upserts: Sequence[Upsert] = (), removes: Sequence[int] = ()) -> list[int]:
        """Apply removes then upserts atomically; return the ids of the upserts in order.
        Records' `fields` are stored as given (validated: InvalidQuery names a bad one)."""
        ...

    def search(self, queries: np.ndarray, k: int, where: SearchFilter | None = None,
               exclude: Sequence[int] = (), ef: int | None = None) -> list[ScoredIds]:
        """Top-k by cosine similarity for each row of `queries` (L2-normalised). `ef`
        (optional, keyword): recall/latency knob of an approximate index; exact stores
        ignore it. Callers pass it only when set."""
        ...

    def size_bytes(self) -> int: ...

    def close(self) -> None: ...
