"""`Library`: a folder of indexed images with one model and one store."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DEFAULT_MODEL, default_library
from ..errors import LookalikeError, ModelMismatchError
from ..imaging import ImageSource, load_image
from ..models import FeatureExtractor, TrainableExtractor, get_extractor, model_info
from ..store import ImageRecord, SearchFilter, VectorStore, open_store
from .browse import check_sort, sort_records
from .duplicates import TIERS, DuplicateProgressFn, DuplicateReport, DuplicateThresholds, find_duplicates
from .entries import file_of
from .indexer import AddReport, Indexer, ProgressFn
from .query import resolve
from .scan import absolute, printable, scan
from .tags import rank_by_tag, tag_filter

STATE_DIR = "model-state"
FIT_SAMPLE = 500  # images a trainable extractor (e.g. a codebook) learns from


@dataclass
class Hit:
    rank: int
    id: int
    path: str
    score: float

    def to_dict(self) -> dict:
        return {**asdict(self), "path": printable(self.path, controls=False)}  # JSON-safe for any file name


class Library:
    def __init__(self, directory: Path, store: VectorStore, model: str) -> None:
        self.directory = directory
        self.store = store
        self.model = model
        self.dim = model_info(model).dim
        self._extractor: FeatureExtractor | None = None

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | None = None, model: str | None = None,
             store: str | VectorStore | None = None, create: bool = True) -> Library:
        """Open the library at `path` (default `$LOOKALIKE_LIBRARY` or ./lookalike-library),
        creating it with `model` if missing. `model` on an existing library must match."""
        directory = Path(path).expanduser() if path is not None else default_library()
        if not create and not _exists(directory, store):
            raise LookalikeError(f"no library at {directory} (create one with `lookalike index FOLDER --library {directory}`)")
        st = open_store(store, directory)
        try:
            meta = st.get_meta()
            stored = meta.get("model")
            if stored is None:
                if not create:  # a store without a library yet (e.g. a missing Milvus collection)
                    raise LookalikeError(f"no library in {st!r} (create one with `lookalike index FOLDER --store ...`)")
                name = model or DEFAULT_MODEL
                info = model_info(name)  # validates the name before anything is written
                st.set_meta({"model": name, "dim": str(info.dim), "model_version": info.version, "created": _now_iso()})
                stored = name
            elif model is not None and model != stored:
                raise ModelMismatchError(
                    f"library {directory} was built with model {stored!r}, not {model!r}: "
                    f"vectors of different models are not comparable (omit --model, or use a new library)")
            else:
                _check_model_version(directory, stored, meta)
            return cls(directory, st, stored)
        except BaseException:
            st.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def extractor(self) -> FeatureExtractor:
        if self._extractor is None:
            ext = get_extractor(self.model, self.directory / STATE_DIR)
            if ext.dim != self.dim:
                raise ModelMismatchError(f"model {self.model!r} now has dimension {ext.dim}, library has {self.dim}")
            self._extractor = ext
        return self._extractor

    # -- writing --------------------------------------------------------------------------
    def add(self, paths: Sequence[str | os.PathLike] | str | os.PathLike, *, prune: bool = False,
            batch_size: int = 32, workers: int | None = None,
            progress: ProgressFn | None = None, sync_index: bool = True) -> AddReport:
        """Index image files and folders (recursively, incrementally). With `prune`, forget
        indexed images under these paths whose files no longer exist. With `sync_index` the
        store's search index (if it has one) is brought up to date before returning."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        refusal = getattr(self.store, "write_refusal", None)  # read-only or full disk: say so before any model work
        if refusal is not None:
            raise refusal
        t0 = time.perf_counter()
        report = AddReport()
        skipped: Counter[str] = Counter()
        entries, report.failed = scan(list(paths), skip=[self.directory], skipped=skipped)
        report.skipped_types = dict(skipped)
        self._fit_if_needed(entries)
        Indexer(self.store, self.extractor, batch_size, workers, progress).run(entries, report)
        if prune:
            report.removed = self._prune([absolute(p) for p in paths])
        report.seconds = time.perf_counter() - t0
        if sync_index:
            self.sync_index()
        return report

    def sync_index(self, progress: ProgressFn | None = None) -> bool:
        """Build or update the store's ANN index now, so the next search does not pay for it.
        True when searches use an ANN index (stores without one: False, nothing to do)."""
        sync = getattr(self.store, "sync_index", None)
        return bool(sync(progress)) if sync is not None else False

    def remove(self, paths: Sequence[str | os.PathLike]) -> int:
        """Forget these images (or every image under these folders, or every frame of these
        videos). Files are untouched."""
        ids: list[int] = []
        for p in paths:
            path = absolute(p)
            rec = self.store.find_path(path)
            if rec is not None:
                ids.append(rec.id)  # type: ignore[arg-type]
            ids += [r.id for r in self.store.iter_records(where=SearchFilter(path.rstrip(os.sep) + os.sep))]
            ids += [r.id for r in self.store.iter_records(where=SearchFilter(path + "#")) if file_of(r.path) == path]
        ids = sorted(set(ids))
        if ids:
            self.store.write(removes=ids)
        return len(ids)

    def _prune(self, roots: list[str]) -> int:
        gone = [r.id for r in self.store.iter_records()
                if _under(file_of(r.path), roots) and not os.path.exists(file_of(r.path))]
        if gone:
            self.store.write(removes=gone)
        return len(gone)

    def _fit_if_needed(self, entries: list) -> None:
        ext = self.extractor
        if not isinstance(ext, TrainableExtractor) or ext.is_fitted():
            return
        rng = np.random.default_rng(0)
        sample = [entries[i] for i in sorted(rng.permutation(len(entries))[:FIT_SAMPLE])]
        images = []
        for e in sample:
            try:
                images.append(load_image(e.path))
            except LookalikeError:
                continue
        if images:
            ext.fit(images)
            ext.save_state(self.directory / STATE_DIR)

    # -- reading --------------------------------------------------------------------------
    def embed(self, images: Sequence[ImageSource]) -> np.ndarray:
        """Vectors for images from any source, decoded exactly as the indexer decodes them."""
        ext = self.extractor
        return ext.embed([load_image(im, ext.draft_size) for im in images])

    def search(self, query: ImageSource | int, k: int = 10, *, min_score: float | None = None,
               where: SearchFilter | None = None, text: str | None = None, ef: int | None = None) -> list[Hit]:
        """Images that look like `query`: a path, URL, bytes, PIL image, array, id or "id:N".
        An indexed image never finds itself. `text` keeps only images tagged with a label it
        names (see `search_text`). `ef`: ANN candidates per query on large libraries (higher:
        better recall, slower; ignored where search is exact)."""
        if text is not None:
            where = tag_filter(text, where)
        q = resolve(query, self.store, self.extractor.draft_size)
        vec = q.vector if q.vector is not None else self.extractor.embed([q.image])[0]
        return self.search_vector(vec, k, min_score=min_score, where=where, exclude=q.exclude, ef=ef)

    def search_vector(self, vector: np.ndarray, k: int = 10, *, min_score: float | None = None,
                      where: SearchFilter | None = None, exclude: Sequence[int] = (),
                      ef: int | None = None) -> list[Hit]:
        q = np.asarray(vector, np.float32)[None]
        # Only pass `ef` when set, so stores written against the original protocol still work.
        scored = (self.store.search(q, k, where, exclude, ef=ef) if ef is not None
                  else self.store.search(q, k, where, exclude))[0]
        if min_score is not None:
            scored = [(i, s) for i, s in scored if s >= min_score]
        records = self.store.get([i for i, _ in scored])
        return [Hit(rank, i, records[i].path, round(s, 6))
                for rank, (i, s) in enumerate(((i, s) for i, s in scored if i in records), start=1)]

    def search_text(self, text: str, k: int = 10, *, min_score: float | None = None,
                    where: SearchFilter | None = None) -> list[Hit]:
        """Images whose stored ImageNet top-5 tags include a label that `text` names (whole
        words of a label or its synonyms, case-insensitive; commas separate alternatives).
        Here `score` is the classifier's confidence: the summed probability of the image's
        matching labels (engine/tags.py), descending."""
        ranked = rank_by_tag(self.store, text, k, where, min_score)
        return [Hit(rank, rec.id, rec.path, round(s, 6)) for rank, (rec, s) in enumerate(ranked, start=1)]  # type: ignore[arg-type]

    def duplicates(self, thresholds: DuplicateThresholds | None = None, tiers: Sequence[str] = TIERS, *,
                   where: SearchFilter | None = None, progress: DuplicateProgressFn | None = None) -> DuplicateReport:
        """Groups of exact copies, near-duplicates and similar shots (engine/duplicates.py)."""
        return find_duplicates(self.store, thresholds, tiers, where, progress)

    def get(self, id_: int) -> ImageRecord:
        rec = self.store.get([id_]).get(id_)
        if rec is None:
            raise LookalikeError(f"no image with id {id_} in this library")
        return rec

    def records(self, offset: int = 0, limit: int | None = None, sort: str | None = None) -> list[ImageRecord]:
        """Records in id order, or by `sort`: "date" (capture time, else file time), "folder"
        or "name"; "-date" etc. reverse it (engine/browse.py)."""
        if check_sort(sort) in (None, "id"):
            return list(self.store.iter_records(offset, limit))
        ordered = sort_records(self.store.iter_records(), sort)  # type: ignore[arg-type]
        return ordered[offset:None if limit is None else offset + limit]

    def __len__(self) -> int:
        return self.store.count()

    def info(self) -> dict:
        meta = self.store.get_meta()
        return {
            "library": str(self.directory.resolve()),
            "store": type(self.store).__name__,
            "images": self.store.count(),
            "model": self.model,
            "dim": self.dim,
            "size_bytes": self.store.size_bytes() + _dir_size(self.directory / STATE_DIR),
            "created": meta.get("created"),
        }


def _check_model_version(directory: Path, name: str, meta: dict[str, str]) -> None:
    """Refuse a library whose vectors came from another build of the same-named model.
    Libraries from before versions were recorded hold the first build ("export-v1" / "1")."""
    current = model_info(name).version
    built = meta.get("model_version") or ("export-v1" if current.startswith("export-v") else "1")
    if built != current:
        raise ModelMismatchError(
            f"library {directory} was built with {name} {built}, but this Lookalike has {name} {current}: "
            f"its vectors are not comparable; re-index into a new library")


def _exists(directory: Path, store: str | VectorStore | None) -> bool:
    from ..store.embedded import DB_NAME

    return store not in (None, "embedded") or (directory / DB_NAME).exists()


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _dir_size(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) if d.exists() else 0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
