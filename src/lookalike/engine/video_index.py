"""Indexing video files: each sampled frame becomes an entry `FILE#t=SECONDS` (engine/entries.py).

A video is the unit of change: an unchanged file (same size and mtime) is skipped without
opening it; a touched file with the same content only gets its frames' size/mtime refreshed;
a changed one has all its frame entries replaced in one store transaction, so a search never
sees a mix of old and new frames. A frame's sha256 is derived from the file's hash and the
frame's time, so copies of one video are exact copies frame by frame (duplicates) while no
frame ever matches a still image."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ImageLoadError, LookalikeError
from ..media.formats import video_format
from ..media.video import DEFAULT_SHORT_SIDE, VideoInfo, sample_frames
from ..models import FeatureExtractor
from ..store import ImageRecord, Upsert, VectorStore
from .entries import split_entry, time_entry
from .fields import ImageInfo, record_fields
from .media_fields import frame_fields, with_date
from .medical_index import entry_sha
from .prefetch import prefetched
from .scan import FileEntry

if TYPE_CHECKING:
    from .indexer import AddReport

_CHUNK = 1 << 20


@dataclass
class _PreparedVideo:
    entry: FileEntry
    sha256: str = ""
    info: VideoInfo | None = None  # None: same content as indexed, nothing to embed
    pixels: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def file_sha256(path: str) -> str:
    """Streamed: a video may be far larger than memory."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except OSError as e:
        raise ImageLoadError(path, f"unreadable ({e.strerror})") from None
    return h.hexdigest()


def _info(e: FileEntry, width: int, height: int) -> ImageInfo:
    return ImageInfo(video_format(e.path), width, height, e.size, e.mtime)


class VideoIndexer:
    def __init__(self, store: VectorStore, extractor: FeatureExtractor, batch_size: int,
                 known_paths: dict[str, ImageRecord], frames_of: dict[str, list[ImageRecord]]) -> None:
        self.store = store
        self.extractor = extractor
        self.batch_size = batch_size
        self.known_paths = known_paths
        self.frames_of = frames_of

    def run(self, videos: list[FileEntry], report: AddReport, progress: Callable[[int], None]) -> None:
        # One video decodes in a worker while the previous one goes through the model.
        with ThreadPoolExecutor(1, thread_name_prefix="lookalike-video") as pool:
            for i, prep in enumerate(prefetched(pool, self._prepare, videos, 1), start=1):
                self._write(prep, report)
                progress(i)

    # Runs in a worker thread: reads only.
    def _prepare(self, e: FileEntry) -> _PreparedVideo:
        try:
            sha = file_sha256(e.path)
            olds = self.frames_of.get(e.path, [])
            if olds and all(o.sha256 == entry_sha(sha, split_entry(o.path)[1] or "") for o in olds):
                return _PreparedVideo(e, sha)  # touched, not changed
            info = sample_frames(e.path, short_side=self.extractor.draft_size or DEFAULT_SHORT_SIDE)
            return _PreparedVideo(e, sha, info, [self.extractor.preprocess(f.image) for f in info.frames])
        except ImageLoadError as err:
            return _PreparedVideo(e, error=err.reason)
        except LookalikeError as err:  # MissingExtra: PyAV not installed
            return _PreparedVideo(e, error=str(err))
        except Exception as err:  # never let one file stop the run
            return _PreparedVideo(e, error=f"{type(err).__name__}: {err}")

    def _write(self, prep: _PreparedVideo, report: AddReport) -> None:
        e = prep.entry
        if prep.error:
            report.failed.append((e.path, prep.error))
            return
        olds = self.frames_of.get(e.path, [])
        if prep.info is None:
            for old in olds:
                old.size, old.mtime = e.size, e.mtime
                old.fields = record_fields(e.path, _info(e, old.width, old.height), with_date(old.fields, e.mtime))
            self.store.write([Upsert(old) for old in olds])
            report.unchanged += 1
            return
        info = prep.info
        vectors: list[np.ndarray] = []
        tags: list = []
        for start in range(0, len(prep.pixels), self.batch_size):
            feats = self.extractor.embed_batch(np.stack(prep.pixels[start:start + self.batch_size]))
            vectors.extend(feats.vectors)
            tags.extend(feats.tags if feats.tags else [[] for _ in feats.vectors])
        upserts = []
        for frame, vec, frame_tags in zip(info.frames, vectors, tags):
            path = time_entry(e.path, frame.time)
            # File facts (folder, name, ...) describe the video file; the rest the frame.
            fields = record_fields(e.path, _info(e, info.width, info.height), frame_fields(info, frame, e.mtime))
            rec = ImageRecord(path, entry_sha(prep.sha256, split_entry(path)[1] or ""), e.size, e.mtime,
                              info.width, info.height, list(frame_tags), fields=fields)
            upserts.append(Upsert(rec, np.asarray(vec, np.float32)))
        removes = [o.id for o in olds if o.id is not None]
        whole = self.known_paths.get(e.path)  # indexed before as a single entry (e.g. named explicitly)
        if whole is not None and whole.id is not None:
            removes.append(whole.id)
        self.store.write(upserts, removes)
        report.embedded += len(upserts)
        report.frames += len(upserts)
        report.videos += 1
        if olds or whole is not None:
            report.updated += 1
        else:
            report.added += 1
        self.frames_of[e.path] = [u.record for u in upserts]
