"""Copy a library from one store to another (embedded <-> Milvus) without re-embedding:
records, vectors and settings move as stored, ids included."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Callable

from ..errors import Conflict, ModelMismatch
from ..store import Upsert
from .library import STATE_DIR, Library

BATCH = 500


@dataclass
class MigrateReport:
    copied: int
    model: str
    seconds: float


def migrate(source: Library, target: Library, progress: Callable[[int, int], None] | None = None) -> MigrateReport:
    """Copy every image of `source` into the empty library `target` (same model).
    Ids, paths, hashes, sizes, times, tags and vectors are kept exactly."""
    import time

    t0 = time.perf_counter()
    if source.model != target.model:  # Library.open already refuses this; a guard for direct callers
        raise ModelMismatch(f"target library uses model {target.model!r}, source {source.model!r}")
    existing = target.store.count()
    if existing:
        raise Conflict(f"target library already holds {existing} images; migrate into a new, empty one")
    total = source.store.count()
    target.store.set_meta(source.store.get_meta())  # model, dim, created (and any other settings)
    done = 0
    batch = []
    for record in source.store.iter_records():
        batch.append(record)
        if len(batch) == BATCH:
            done += _copy(source, target, batch)
            batch = []
            if progress:
                progress(done, total)
    done += _copy(source, target, batch)
    if progress:
        progress(done, total)
    state = source.directory / STATE_DIR
    if state.is_dir() and state.resolve() != (target.directory / STATE_DIR).resolve():
        shutil.copytree(state, target.directory / STATE_DIR, dirs_exist_ok=True)  # a trained extractor's state
    copied = target.store.count()
    if copied != done:
        raise Conflict(f"copied {done} images but the target reports {copied}; run migrate again into a new library")
    return MigrateReport(copied=copied, model=source.model, seconds=time.perf_counter() - t0)


def _copy(source: Library, target: Library, records: list) -> int:
    if not records:
        return 0
    vectors = source.store.vectors([r.id for r in records])
    target.store.write([Upsert(r, v) for r, v in zip(records, vectors)])
    return len(records)
