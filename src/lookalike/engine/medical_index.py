"""Indexing scan files (DICOM, NIfTI): each frame or slice becomes an entry (engine/entries.py).

A file is the unit of change: an unchanged file (same size and mtime on every entry) is
skipped without opening it; a changed one has all its entries replaced in one store
transaction, so a search never sees a mix of old and new frames. The library's window and
PHI policy (`scan_window`, `scan_keep_phi` in the store's meta) apply to every file."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ImageLoadError, LookalikeError
from ..imaging import read_file
from ..medical.reader import read_scan
from ..medical.window import parse_window
from ..models import FeatureExtractor
from ..store import ImageRecord, Upsert, VectorStore
from .entries import WINDOW_META, entry_of, split_entry
from .fields import ImageInfo, record_fields
from .prefetch import prefetched
from .scan import FileEntry

if TYPE_CHECKING:
    from .indexer import AddReport

PHI_META = "scan_keep_phi"  # "true" only if the library was created with the explicit opt-in


@dataclass
class _Frame:
    fragment: str | None
    fields: dict
    size: tuple[int, int]  # the picture's (width, height); its pixels are dropped once preprocessed


@dataclass
class _PreparedScan:
    entry: FileEntry
    sha256: str = ""
    frames: list[_Frame] = field(default_factory=list)
    pixels: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def entry_sha(file_sha: str, fragment: str | None) -> str:
    """A frame's content id: copies of a file are copies frame by frame; no frame matches a still."""
    return file_sha if fragment is None else hashlib.sha256(f"{file_sha}#{fragment}".encode()).hexdigest()


def entries_by_file(records: dict[str, ImageRecord]) -> dict[str, list[ImageRecord]]:
    out: dict[str, list[ImageRecord]] = {}
    for r in records.values():
        out.setdefault(split_entry(r.path)[0], []).append(r)
    return out


class ScanIndexer:
    def __init__(self, store: VectorStore, extractor: FeatureExtractor, batch_size: int,
                 entries_of: dict[str, list[ImageRecord]], workers: int = 2) -> None:
        self.store = store
        self.extractor = extractor
        self.batch_size = batch_size
        self.entries_of = entries_of
        self.workers = max(1, workers)
        self._pending: list[_PreparedScan] = []  # files waiting for the model, batched across files
        meta = store.get_meta()
        self.window = parse_window(meta.get(WINDOW_META))
        self.keep_phi = meta.get(PHI_META) == "true"

    def is_unchanged(self, e: FileEntry) -> bool:
        olds = self.entries_of.get(e.path, [])
        return bool(olds) and all(o.size == e.size and o.mtime == e.mtime for o in olds)

    def run(self, scans: list[FileEntry], report: AddReport, progress: Callable[[int], None]) -> None:
        """Files decode in worker threads (pydicom, the JPEG decoders and numpy release the GIL),
        a few ahead of the model, in order; frames of several small files share a model batch."""
        window = self.workers + 1  # bounded read-ahead: a scan file can hold thousands of frames
        with ThreadPoolExecutor(self.workers, thread_name_prefix="lookalike-scan") as pool:
            done = 0
            for prep in prefetched(pool, self._prepare, scans, window):
                self.write(prep, report)
                done += 1
                progress(done)
        self.flush(report)

    # Runs in a worker thread: reads only.
    def _prepare(self, e: FileEntry) -> _PreparedScan:
        try:
            data = read_file(e.path)
        except ImageLoadError as err:
            return _PreparedScan(e, error=err.reason)
        return self.prepare_data(e, data)

    def prepare_data(self, e: FileEntry, data: bytes) -> _PreparedScan:
        """Decode and preprocess a scan's bytes (from a file or a DICOMweb server)."""
        try:
            sha = hashlib.sha256(data).hexdigest()
            olds = self.entries_of.get(e.path, [])
            if olds and all(o.sha256 == entry_sha(sha, split_entry(o.path)[1]) for o in olds):
                return _PreparedScan(e, sha)  # touched, not changed
            frames = read_scan(data, e.path, self.window, self.keep_phi)
            pixels = [self.extractor.preprocess(f.image) for f in frames]
            return _PreparedScan(e, sha, [_Frame(f.fragment, f.fields, f.image.size) for f in frames], pixels)
        except ImageLoadError as err:
            return _PreparedScan(e, error=err.reason)
        except LookalikeError as err:  # MissingExtra: a decoder or pydicom not installed
            return _PreparedScan(e, error=str(err))
        except Exception as err:  # never let one file stop the run
            return _PreparedScan(e, error=f"{type(err).__name__}: {err}")

    def write(self, prep: _PreparedScan, report: AddReport) -> None:
        """Queue a prepared file for the model; its entries are written by `flush` (called here
        once a batch is full, and by the caller at the end)."""
        e = prep.entry
        if prep.error:
            report.failed.append((e.path, prep.error))
            return
        olds = self.entries_of.get(e.path, [])
        if not prep.frames:
            for old in olds:
                old.size, old.mtime = e.size, e.mtime
            self.store.write([Upsert(old) for old in olds])
            report.unchanged += 1
            return
        self._pending.append(prep)
        if sum(len(p.pixels) for p in self._pending) >= self.batch_size:
            self.flush(report)

    def flush(self, report: AddReport) -> None:
        """Embed every queued frame and replace each queued file's entries, all in one transaction."""
        if not self._pending:
            return
        pixels = [px for p in self._pending for px in p.pixels]
        vectors: list[np.ndarray] = []
        tags: list = []
        for start in range(0, len(pixels), self.batch_size):
            feats = self.extractor.embed_batch(np.stack(pixels[start:start + self.batch_size]))
            vectors.extend(feats.vectors)
            tags.extend(feats.tags if feats.tags else [[] for _ in feats.vectors])
        upserts: list[Upsert] = []
        removes: list[int] = []
        written: list[tuple[str, list[Upsert]]] = []
        at = 0
        for prep in self._pending:
            e = prep.entry
            mine = []
            for frame in prep.frames:
                w, h = frame.size
                # The file's facts (folder, name, bytes, mtime, ...) like any image, then the scan's own.
                info = ImageInfo(frame.fields.get("format"), w, h, e.size, e.mtime)
                fields = {**record_fields(e.path, info), **frame.fields}
                rec = ImageRecord(entry_of(e.path, frame.fragment), entry_sha(prep.sha256, frame.fragment), e.size, e.mtime,
                                  w, h, list(tags[at]), fields=fields)
                mine.append(Upsert(rec, np.asarray(vectors[at], np.float32)))
                at += 1
            olds = self.entries_of.get(e.path, [])
            removes += [o.id for o in olds if o.id is not None]
            report.updated += 1 if olds else 0
            report.added += 0 if olds else 1
            upserts += mine
            written.append((e.path, mine))
        self.store.write(upserts, removes)
        report.embedded += len(upserts)
        for path, mine in written:
            self.entries_of[path] = [u.record for u in mine]
        self._pending.clear()
