"""Upserting checked item rows into a library: embed only what is new or whose image changed.

The same pipeline shape as the file indexer (engine/indexer.py): worker threads fetch, hash,
decode and preprocess; the calling thread runs batched inference and commits each batch in one
store transaction, so an interrupted import keeps every finished batch and a re-run resumes
(committed items are then unchanged). Per item:
- new id: image fetched and embedded (or its vector reused when the same image is indexed);
- same image source (same URL, or same local file size+mtime): no fetch; fields updated if changed;
- another source: fetched and hashed; re-embedded only when the bytes differ."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ...errors import ImageLoadError
from ...imaging import decode_image, original_size, read_file
from ...models import FeatureExtractor, for_indexing
from ...store import ImageRecord, SearchFilter, Upsert, VectorStore
from ..indexer import ProgressFn
from ..prefetch import prefetched
from .colour import ColourStore, colour_signature
from .downloads import Downloader
from .items import ITEM_PREFIX, item_id, item_path
from .rowcheck import ItemRow
from .rows import ProblemRow


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0  # image changed
    metadata: int = 0  # fields changed, image unchanged (no model run)
    unchanged: int = 0
    removed: int = 0
    embedded: int = 0  # images that went through the model
    downloaded: int = 0
    from_cache: int = 0  # URLs served by the download cache
    problems: list[ProblemRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        done = self.added + self.updated + self.metadata + self.unchanged
        return done / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "added": self.added, "updated": self.updated, "metadata": self.metadata, "unchanged": self.unchanged,
            "removed": self.removed, "embedded": self.embedded, "downloaded": self.downloaded,
            "from_cache": self.from_cache, "notes": self.notes,
            "problems": [{"where": p.where, "item": p.item, "reason": p.reason} for p in self.problems],
            "seconds": round(self.seconds, 3), "rows_per_second": round(self.rows_per_second, 2),
        }


@dataclass
class _Prepared:
    row: ItemRow
    old: ImageRecord | None
    sha256: str = ""
    size: int = 0
    mtime: float = 0.0
    pixels: np.ndarray | None = None  # model input; None when the bytes are already known
    dims: tuple[int, int] = (0, 0)
    colour: np.ndarray | None = None  # colour signature (colour.py), with the pixels
    downloaded: bool = False
    cached: bool = False
    error: str | None = None


def item_records(store: VectorStore) -> dict[str, ImageRecord]:
    """item id -> record, for every item in the store (one filtered scan, not one lookup per row)."""
    return {item_id(r.path): r for r in store.iter_records(where=SearchFilter(path_prefix=ITEM_PREFIX))}  # type: ignore[misc]


class ItemImporter:
    def __init__(self, store: VectorStore, extractor: FeatureExtractor, downloader: Downloader, *,
                 batch_size: int = 32, workers: int | None = None, progress: ProgressFn | None = None,
                 colours: ColourStore | None = None) -> None:
        self.store = store
        self.colours = colours
        self._signatures: dict[str, np.ndarray] = {}
        self.extractor = for_indexing(extractor)  # fewer model threads, leaving cores to decoding
        self.downloader = downloader
        self.batch_size = batch_size
        self.workers = workers
        self.progress = progress or (lambda done, total: None)

    def run(self, rows: list[ItemRow], report: ImportReport) -> None:
        existing = item_records(self.store)
        writes: list[Upsert] = []
        todo: list[tuple[ItemRow, ImageRecord | None]] = []
        for row in rows:
            old = existing.get(row.item)
            if old is not None and _same_source(old, row):
                if old.fields != row.record_fields():
                    old.fields = row.record_fields()
                    writes.append(Upsert(old))
                    report.metadata += 1
                else:
                    report.unchanged += 1
            else:
                todo.append((row, old))
        self.progress(0, len(todo))
        for start in range(0, len(writes), 500):  # metadata-only changes: no model, large transactions
            self.store.write(writes[start:start + 500])
        writes.clear()
        if not todo:
            return
        self._hashes = self.store.hashes()
        any_url = any(r.image.startswith(("http://", "https://")) for r, _ in todo)
        # Downloads wait on the network, not the CPU: more threads than cores keep it busy.
        workers = self.workers or max(8 if any_url else 2, os.cpu_count() or 2)
        pending: list[_Prepared] = []
        done = 0
        window = max(self.batch_size * 3, workers * 2)
        with ThreadPoolExecutor(workers, thread_name_prefix="lookalike-catalogue") as pool:
            for prep in prefetched(pool, lambda pair: self._prepare(*pair), todo, window):
                self._decide(prep, report, pending, writes)
                if len(pending) >= self.batch_size:
                    self._embed(pending, writes, report)
                if len(writes) >= self.batch_size:
                    self._flush(writes)
                done += 1
                self.progress(done, len(todo))
        self._embed(pending, writes, report)
        self._flush(writes)

    # Runs in worker threads: no store access here.
    def _prepare(self, row: ItemRow, old: ImageRecord | None, decode: bool = False) -> _Prepared:
        prep = _Prepared(row, old)
        try:
            if row.image.startswith(("http://", "https://")):
                fetched = self.downloader.fetch(row.image)
                data, prep.downloaded, prep.cached = fetched.data, fetched.downloaded, not fetched.downloaded
                prep.sha256 = fetched.sha256
            else:
                st = os.stat(row.image)
                data = read_file(row.image)
                prep.mtime = st.st_mtime
                prep.sha256 = hashlib.sha256(data).hexdigest()
            prep.size = len(data)
            known = prep.sha256 in self._hashes or (old is not None and old.sha256 == prep.sha256)
            if known and not decode:
                return prep
            image = decode_image(data, row.image, draft_size=self.extractor.draft_size)
            prep.pixels, prep.dims = self.extractor.preprocess(image), original_size(image)
            if self.colours is not None:
                prep.colour = colour_signature(image)
        except FileNotFoundError:
            prep.error = "image file not found"
        except ImageLoadError as err:
            prep.error = err.reason
        except OSError as err:
            prep.error = f"image unreadable ({err.strerror or err})"
        except Exception as err:  # never let one row stop the import
            prep.error = f"{type(err).__name__}: {err}"
        return prep

    def _decide(self, prep: _Prepared, report: ImportReport, pending: list[_Prepared], writes: list[Upsert]) -> None:
        row, old = prep.row, prep.old
        report.downloaded += prep.downloaded
        report.from_cache += prep.cached
        if prep.error:
            report.problems.append(ProblemRow(row.where, f"image {_short(row.image)}: {prep.error}", row.item))
            return
        if prep.pixels is not None:
            pending.append(prep)
            return
        if old is not None and old.sha256 == prep.sha256:  # another source, same bytes: no model run
            old.size, old.mtime, old.fields = prep.size, prep.mtime, row.record_fields()
            writes.append(Upsert(old))
            report.metadata += 1
            return
        sources = self.store.get(self._hashes.get(prep.sha256, [])[:1])
        vec = None
        if sources:
            src = next(iter(sources.values()))
            try:
                vec = self.store.vectors([src.id])[0]  # type: ignore[list-item]
            except KeyError:  # removed by another process meanwhile
                vec = None
        if vec is None:
            again = self._prepare(row, old, decode=True)
            if again.error:
                report.problems.append(ProblemRow(row.where, f"image {_short(row.image)}: {again.error}", row.item))
            else:
                pending.append(again)
            return
        rec = ImageRecord(item_path(row.item), prep.sha256, prep.size, prep.mtime, src.width, src.height,
                          list(src.tags), id=old.id if old is not None else None, fields=row.record_fields())
        writes.append(Upsert(rec, vec))
        if old is not None:
            report.updated += 1
        else:
            report.added += 1

    def _embed(self, pending: list[_Prepared], writes: list[Upsert], report: ImportReport) -> None:
        if not pending:
            return
        feats = self.extractor.embed_batch(np.stack([p.pixels for p in pending if p.pixels is not None]))
        for i, prep in enumerate(pending):
            if prep.colour is not None:
                self._signatures[prep.sha256] = prep.colour
            tags = feats.tags[i] if i < len(feats.tags) else []
            rec = ImageRecord(item_path(prep.row.item), prep.sha256, prep.size, prep.mtime, prep.dims[0], prep.dims[1],
                              tags, id=prep.old.id if prep.old is not None else None, fields=prep.row.record_fields())
            writes.append(Upsert(rec, feats.vectors[i]))
            if prep.old is not None:
                report.updated += 1
            else:
                report.added += 1
        report.embedded += len(pending)
        pending.clear()

    def _flush(self, writes: list[Upsert]) -> None:
        if self.colours is not None and self._signatures:
            self.colours.put(self._signatures)  # before the records: a searchable item has its colour
            self._signatures.clear()
        if not writes:
            return
        ids = self.store.write(writes)
        for up, id_ in zip(writes, ids):
            if id_ >= 0:
                bucket = self._hashes.setdefault(up.record.sha256, [])
                if id_ not in bucket:
                    bucket.append(id_)
        writes.clear()


def prune_items(store: VectorStore, keep: set[str]) -> int:
    """Remove every item whose id is not in `keep`."""
    gone = [r.id for item, r in item_records(store).items() if item not in keep]
    for start in range(0, len(gone), 1000):
        store.write(removes=gone[start:start + 1000])  # type: ignore[arg-type]
    return len(gone)


def _same_source(old: ImageRecord, row: ItemRow) -> bool:
    """The row names the image the item was embedded from, and (for a file) the file is untouched."""
    if old.fields.get("image") != row.image:
        return False
    if row.image.startswith(("http://", "https://")):
        return True
    try:
        st = os.stat(row.image)
    except OSError:
        return False  # gone: the fetch reports it
    return st.st_size == old.size and st.st_mtime == old.mtime


def _short(source: str, limit: int = 100) -> str:
    return source if len(source) <= limit else source[:limit - 1] + "…"
