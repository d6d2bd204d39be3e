"""The indexing pipeline: decide what changed, read+hash+decode+preprocess in worker threads
(Pillow and hashlib release the GIL) while the main thread runs batched inference, and
commit each batch in one store transaction so an interruption loses at most one batch."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import ImageLoadError, LookalikeError
from ..imaging import decode_image, image_format, original_size, read_file, sniff_format
from ..media.formats import media_kind, raw_format
from ..medical.reader import is_scan
from ..models import FeatureExtractor, for_indexing
from ..store import ImageRecord, Upsert, VectorStore
from .entries import file_of, split_entry
from .fields import ImageInfo, has_file_fields, record_fields
from .media_fields import image_fields, replace_media_fields, with_date
from .medical_index import ScanIndexer, entries_by_file
from .prefetch import prefetched
from .scan import FileEntry, printable, record_file_exists
from .video_index import VideoIndexer

# (done, total) -> None, called from the indexing thread.
ProgressFn = Callable[[int, int], None]


@dataclass
class AddReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved: int = 0
    removed: int = 0
    embedded: int = 0  # images that actually went through the model
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    videos: int = 0  # video files (re-)indexed; each adds its sampled frames as entries
    frames: int = 0  # video frames written
    skipped_types: dict[str, int] = field(default_factory=dict)  # extension -> files not indexed

    def skipped_summary(self) -> str:
        """"skipped 3 files of unsupported types: .xyz (2), .psd (1)", or "" when none."""
        if not self.skipped_types:
            return ""
        n = sum(self.skipped_types.values())
        kinds = ", ".join(f"{ext} ({c})" for ext, c in sorted(self.skipped_types.items(), key=lambda kv: (-kv[1], kv[0])))
        return f"skipped {n} file{'s' if n != 1 else ''} of unsupported types: {kinds}"

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "moved": self.moved, "removed": self.removed, "embedded": self.embedded,
            "failed": [{"path": printable(p, controls=False), "reason": r} for p, r in self.failed],
            "seconds": round(self.seconds, 3), "images_per_second": round(self.images_per_second, 2),
            "videos": self.videos, "frames": self.frames, "skipped_types": dict(self.skipped_types),
        }


@dataclass
class _Prepared:
    entry: FileEntry
    sha256: str = ""
    pixels: np.ndarray | None = None  # model input; None when the content is already known
    size: tuple[int, int] = (0, 0)
    error: str | None = None
    format: str | None = None  # from the decoder (or the header when not decoded)
    fields: dict[str, Any] = field(default_factory=dict)  # media, EXIF and date of new content
    # Set instead of `pixels` when the model already ran elsewhere (engine/distributed.py).
    vector: np.ndarray | None = None
    tags: list = field(default_factory=list)

    @property
    def needs_model(self) -> bool:
        return self.pixels is not None or self.vector is not None


def prepare_file(e: FileEntry, extractor: FeatureExtractor, known: Callable[[str], bool]) -> _Prepared:
    """Read and hash one file; unless `known(sha256)`, decode and preprocess it for the model.
    Any failure becomes the file's one-line error, so one file never stops a run. Used by
    the local indexer's threads and by the Ray workers alike."""
    try:
        data = read_file(e.path)
        sha = hashlib.sha256(data).hexdigest()
        if known(sha):
            return _Prepared(e, sha, format=raw_format(e.path) or sniff_format(data))  # RAW headers look like TIFF
        image = decode_image(data, e.path, draft_size=extractor.draft_size)
        return _Prepared(e, sha, extractor.preprocess(image), original_size(image), format=image_format(image),
                         fields=image_fields(data, e.mtime))
    except ImageLoadError as err:
        return _Prepared(e, error=err.reason)
    except LookalikeError as err:  # e.g. MissingExtra for a HEIC without pillow-heif
        return _Prepared(e, error=str(err))
    except Exception as err:  # never let one file stop the run
        return _Prepared(e, error=f"{type(err).__name__}: {err}")


class Indexer:
    def __init__(self, store: VectorStore, extractor: FeatureExtractor, batch_size: int = 32,
                 workers: int | None = None, progress: ProgressFn | None = None, detect_moves: bool = True) -> None:
        self.store = store
        # A new file with the content of an indexed one whose file is gone is taken as a move of
        # it; uploads turn that off, so an upload never takes over a gallery image's record.
        self.detect_moves = detect_moves
        self.extractor = for_indexing(extractor)  # the model's indexing session
        self.batch_size = batch_size
        self.workers = workers or max(2, os.cpu_count() or 2)
        self.progress = progress or (lambda done, total: None)

    def run(self, entries: list[FileEntry], report: AddReport) -> None:
        known_paths = {r.path: r for r in self.store.iter_records()}
        frames_of: dict[str, list[ImageRecord]] = {}  # a video file -> its frame entries
        for r in known_paths.values():
            file, fragment = split_entry(r.path)
            if fragment is not None and fragment.startswith("t="):
                frames_of.setdefault(file, []).append(r)
        todo, scans, videos = [], [], []
        scan_indexer = ScanIndexer(self.store, self.extractor, self.batch_size, entries_by_file(known_paths), self.workers)
        refresh: list[tuple[FileEntry, ImageRecord]] = []
        for e in entries:
            if is_scan(e.path):  # DICOM / NIfTI: one file, many entries (engine/medical_index.py)
                if scan_indexer.is_unchanged(e):
                    report.unchanged += 1
                else:
                    scans.append(e)
                continue
            if media_kind(e.path) == "video":  # one file, one entry per sampled frame (engine/video_index.py)
                olds = frames_of.get(e.path, [])
                if olds and all(o.size == e.size and o.mtime == e.mtime for o in olds):
                    report.unchanged += 1
                else:
                    videos.append(e)
                continue
            old = known_paths.get(e.path)
            if old is not None and old.size == e.size and old.mtime == e.mtime:
                report.unchanged += 1
                if not has_file_fields(old.fields) or "media" not in old.fields:  # indexed before fields existed
                    refresh.append((e, old))
            else:
                todo.append(e)
        self._refresh_fields(refresh)
        total = len(todo) + len(scans) + len(videos)
        self.progress(0, total)
        if scans:
            scan_indexer.run(scans, report, lambda n: self.progress(n, total))
        if videos:
            VideoIndexer(self.store, self.extractor, self.batch_size, known_paths, frames_of).run(
                videos, report, lambda n: self.progress(len(scans) + n, total))
        if todo:
            self._run_images(todo, entries, known_paths, report, len(scans) + len(videos), total)

    def _run_images(self, todo: list[FileEntry], entries: list[FileEntry], known_paths: dict[str, ImageRecord],
                    report: AddReport, done_before: int, total: int) -> None:
        self._hashes = self.store.hashes()
        self._paths = known_paths
        self._present = {e.path for e in entries}
        pending: list[tuple[_Prepared, ImageRecord | None]] = []  # waiting for the model
        writes: list[Upsert] = []
        removes: list[int] = []
        done = 0
        for prep in self._prepared_all(todo):
            self._decide(prep, report, pending, writes, removes)
            if len(pending) >= self.batch_size:
                self._embed(pending, writes, report)
            if len(writes) >= self.batch_size or removes:
                self._flush(writes, removes)
            done += 1
            self.progress(done_before + done, total)
        self._embed(pending, writes, report)
        self._flush(writes, removes)

    def _prepared_all(self, todo: list[FileEntry]) -> Iterator[_Prepared]:
        """Each file read, hashed and (new content) decoded, in order; engine/distributed.py
        does this stage on a Ray cluster instead of these threads."""
        window = self.batch_size * 3  # bounded read-ahead keeps memory flat on huge folders
        with ThreadPoolExecutor(self.workers, thread_name_prefix="lookalike-decode") as pool:
            yield from prefetched(pool, self._prepare, todo, window)

    def _refresh_fields(self, refresh: list[tuple[FileEntry, ImageRecord]]) -> None:
        """Give unchanged records made before fields existed their file and photo fields: a
        header read each (EXIF sits in the first megabyte), no decoding, no model, vectors kept."""
        for start in range(0, len(refresh), 500):
            writes = []
            for e, old in refresh[start:start + 500]:
                try:
                    with open(e.path, "rb") as f:
                        head = f.read(1 << 20)
                except OSError:
                    continue  # unreadable now: left as it is, as its content is unchanged
                media = image_fields(head, e.mtime)
                fmt = raw_format(e.path) or sniff_format(head)
                old.fields = record_fields(e.path, ImageInfo(fmt, old.width, old.height, e.size, e.mtime),
                                           replace_media_fields(old.fields, media))
                writes.append(Upsert(old))
            if writes:
                self.store.write(writes)

    # Runs in worker threads: no store access here.
    def _prepare(self, e: FileEntry, decode: bool = False) -> _Prepared:
        return prepare_file(e, self.extractor, (lambda sha: False) if decode else self._hashes.__contains__)

    def _decide(self, prep: _Prepared, report: AddReport, pending: list, writes: list[Upsert],
                removes: list[int]) -> None:
        e = prep.entry
        if prep.error:
            report.failed.append((e.path, prep.error))
            return
        old = self._paths.get(e.path)
        if prep.needs_model:
            pending.append((prep, old))
            return
        same = list(self._hashes.get(prep.sha256, []))
        if old is not None and old.sha256 == prep.sha256:
            # Touched but identical: refresh size/mtime (and the fields that show them) only.
            old.size, old.mtime = e.size, e.mtime
            old.fields = record_fields(e.path, self._info(prep, old.width, old.height), with_date(old.fields, e.mtime))
            writes.append(Upsert(old))
            report.unchanged += 1
            return
        records = self.store.get(same)
        if not records:
            # Another process removed every record with this content since we looked: embed it.
            self._embed_after_all(e, old, report, pending)
            return
        # Records that are not local files (catalogue items, PACS instances) never moved.
        gone = [r for r in records.values() if file_of(r.path) not in self._present and not record_file_exists(r.path)]
        if old is not None:
            removes.append(old.stored_id)  # a different file now sits at this path
            self._forget(old)
        if gone and self.detect_moves:
            rec = gone[0]
            del self._paths[rec.path]
            rec.path, rec.size, rec.mtime = e.path, e.size, e.mtime
            rec.fields = record_fields(e.path, self._info(prep, rec.width, rec.height), with_date(rec.fields, e.mtime))
            self._paths[e.path] = rec
            writes.append(Upsert(rec))
            report.moved += 1
            return
        # A copy of an indexed image: reuse its vector and tags, no model run needed.
        src = next(iter(records.values()))
        try:
            vec = self.store.vectors([src.stored_id])[0]
        except KeyError:  # removed by another process between the two reads
            self._embed_after_all(e, None, report, pending)
            return
        rec = ImageRecord(e.path, prep.sha256, e.size, e.mtime, src.width, src.height, list(src.tags),
                          fields=record_fields(e.path, self._info(prep, src.width, src.height),
                                               with_date(replace_media_fields({}, src.fields), e.mtime)))
        writes.append(Upsert(rec, vec))
        report.added += 1

    @staticmethod
    def _info(prep: _Prepared, width: int, height: int) -> ImageInfo:
        return ImageInfo(prep.format, width, height, prep.entry.size, prep.entry.mtime)

    def _embed_after_all(self, e: FileEntry, old: ImageRecord | None, report: AddReport, pending: list) -> None:
        """The content was known when the worker hashed it but is gone now: decode and queue it
        for the model like new content."""
        prep = self._prepare(e, decode=True)
        if prep.error:
            report.failed.append((e.path, prep.error))
        else:
            pending.append((prep, old))

    def _forget(self, rec: ImageRecord) -> None:
        self._paths.pop(rec.path, None)
        ids = self._hashes.get(rec.sha256, [])
        if rec.id in ids:
            ids.remove(rec.id)
            if not ids:
                del self._hashes[rec.sha256]

    def _embed(self, pending: list, writes: list[Upsert], report: AddReport) -> None:
        if not pending:
            return
        vectors, all_tags = self._features([p for p, _ in pending])
        for i, (prep, old) in enumerate(pending):
            e = prep.entry
            tags = all_tags[i] if i < len(all_tags) else []
            rec = ImageRecord(e.path, prep.sha256, e.size, e.mtime, prep.size[0], prep.size[1], tags,
                              id=old.id if old is not None else None,
                              fields=record_fields(e.path, self._info(prep, *prep.size),
                                                   replace_media_fields(old.fields if old else {}, prep.fields)))
            if old is not None:
                self._forget(old)
                report.updated += 1
            else:
                report.added += 1
            writes.append(Upsert(rec, vectors[i]))
        report.embedded += len(pending)
        pending.clear()

    def _features(self, preps: list[_Prepared]) -> tuple[np.ndarray, list]:
        """(vectors, tags) of prepared images: the model runs here on their pixels."""
        feats = self.extractor.embed_batch(np.stack([p.pixels for p in preps if p.pixels is not None]))
        return feats.vectors, feats.tags

    def _flush(self, writes: list[Upsert], removes: list[int]) -> None:
        if not writes and not removes:
            return
        ids = self.store.write(writes, removes)
        for up, id_ in zip(writes, ids):
            if id_ < 0:  # its record was removed by another process; a later run re-adds the file
                continue
            up.record.id = id_
            self._paths[up.record.path] = up.record
            bucket = self._hashes.setdefault(up.record.sha256, [])
            if id_ not in bucket:
                bucket.append(id_)
        writes.clear()
        removes.clear()

