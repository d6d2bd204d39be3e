"""`Library`: a folder of indexed images with one model and one store."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Sequence, cast

import numpy as np
from PIL import Image

from ..config import DEFAULT_MODEL, default_library
from ..errors import Conflict, InvalidQuery, LookalikeError, ModelMismatchError, NotFound
from ..filters import And, FieldTypes, parse
from ..imaging import ImageSource, load_image
from ..models import FeatureExtractor, TrainableExtractor, get_extractor, model_info
from ..models.calibrate import Calibration
from ..models.imagenet_labels import imagenet_labels
from ..store import ImageRecord, SearchFilter, VectorStore, library_exists, open_store
from . import cleanup
from .browse import check_sort, sort_records
from .catalogue.colour import ColourStore
from .cleanup import Choice, CleanupReport, UndoReport
from .combine import check_weights, combine_vectors
from .confidence import calibration_for, check_min_confidence, keep_confident, verdict, with_confidence
from .duplicates import TIERS, DuplicateProgressFn, DuplicateReport, DuplicateThresholds, find_duplicates
from .entries import WINDOW_META, file_of, load_entry, split_entry
from .explain import Explanation, FeatureMapCache, agreement
from .indexer import AddReport, Indexer, ProgressFn
from .keep_policy import KeepPolicy
from .medical_index import entry_sha
from .params import check_ef, check_k, check_score, fit_sample, no_image
from .query import download, resolve
from .rerank import QueryExpansion, check_rerank, expand_queries
from .scan import absolute, printable, record_file_exists, record_folder_exists, scan
from .tags import FILTER_CONFIDENCE, Expansion, VocabularyEntry, expand, rank_by_tag, vocabulary
from .verify import DRAFT_SIDE as VERIFY_DRAFT
from .verify import check_depth, check_verify, verified_order, verify_images

STATE_DIR = "model-state"
ROOTS_META = "indexed_roots"  # JSON list of the real paths passed to add()


@dataclass
class Hit:
    rank: int
    id: int
    path: str
    score: float
    fields: dict[str, Any] = field(default_factory=dict)
    # The probability that this image shows the same thing as the query (engine/confidence.py);
    # None for a model without a confidence curve.
    confidence: float | None = None
    # Keypoint matches consistent with one transform between query and hit (search with
    # verify=True, engine/verify.py); None when the search did not verify.
    inliers: int | None = None

    @property
    def item(self) -> str | None:
        """The catalogue item's id (engine/catalogue/), None for an indexed file."""
        return self.path[len("item:"):] if self.path.startswith("item:") else None

    def to_dict(self) -> dict:
        fields = {k: printable(v, controls=False) if isinstance(v, str) else v for k, v in self.fields.items()}
        out = {**asdict(self), "path": printable(self.path, controls=False), "fields": fields}  # JSON-safe for any file name
        if self.inliers is None:  # only verified searches carry it: other results keep their shape
            del out["inliers"]
        if self.item is not None:  # catalogue items carry their id; file results keep their shape
            out["item"] = self.item
        return out


class Library:
    def __init__(self, directory: Path, store: VectorStore, model: str) -> None:
        self.directory = directory
        self.store = store
        self.model = model
        self.dim = model_info(model).dim
        self._extractor: FeatureExtractor | None = None
        self._gone: set[int] = set()  # images found deleted at search time, to remove from the store
        self._colours: ColourStore | None = None
        self._colours_lock = threading.Lock()
        self._feature_maps = FeatureMapCache()

    # -- opening --------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike | None = None, model: str | None = None,
             store: str | VectorStore | None = None, create: bool = True) -> Library:
        """Open the library at `path` (default `$LOOKALIKE_LIBRARY` or ./lookalike-library),
        creating it with `model` if missing. `model` on an existing library must match."""
        directory = Path(path).expanduser() if path is not None else default_library()
        if not create and not library_exists(store, directory):
            raise NotFound(f"no library at {directory} (create one with `lookalike index FOLDER --library {directory}`)")
        st = open_store(store, directory)
        try:
            meta = st.get_meta()
            stored = meta.get("model")
            if stored is None:
                if not create:  # a store without a library yet (e.g. a missing Milvus collection)
                    raise NotFound(f"no library in {st!r} (create one with `lookalike index FOLDER --store ...`)")
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
        with self._colours_lock:
            if self._colours is not None:
                self._colours.close()
                self._colours = None
        self.store.close()

    @property
    def colours(self) -> ColourStore:
        """The catalogue's colour signatures (engine/catalogue/colour.py), opened once per
        library and closed with it: searches with a colour weight share one connection."""
        with self._colours_lock:
            if self._colours is None:
                self._colours = ColourStore(self.directory)
            return self._colours

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
            progress: ProgressFn | None = None, sync_index: bool = True, detect_moves: bool = True,
            ray: str | None = None) -> AddReport:
        """Index image files and folders (recursively, incrementally). With `prune`, forget
        indexed images under these paths whose files no longer exist. With `sync_index` the
        store's search index (if it has one) is brought up to date before returning. With
        `ray` (a cluster address, or "local" for a one-node cluster started for this call) the
        images are read and embedded on a Ray cluster (engine/distributed.py)."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        refusal = self.store.write_refusal()  # read-only or full disk: say so before any model work
        if refusal is not None:
            raise refusal
        if ray is not None:
            from .distributed import check_installed

            check_installed()
        t0 = time.perf_counter()
        report = AddReport()
        skipped: Counter[str] = Counter()
        entries, report.failed = scan(list(paths), skip=[self.directory], skipped=skipped)
        report.skipped_types = dict(skipped)
        self._fit_if_needed(entries)
        if entries:
            self._remember_roots(paths)
        if ray is None:
            Indexer(self.store, self.extractor, batch_size, workers, progress, detect_moves).run(entries, report)
        else:
            from .distributed import RayIndexer, ray_cluster

            with ray_cluster(ray) as cluster:
                RayIndexer(cluster, self.store, self.extractor, self.model, self.directory / STATE_DIR, batch_size,
                           progress, detect_moves).run(entries, report)
        if prune:
            report.removed = self._prune([absolute(p) for p in paths])
        report.seconds = time.perf_counter() - t0
        if sync_index:
            self.sync_index()
        return report

    def _remember_roots(self, paths: Sequence[str | os.PathLike]) -> None:
        """The real folders and files ever indexed: files are served only from under them."""
        roots = set(self.indexed_roots())
        # Paths under a known root add nothing (a watcher adds single files all day long).
        new = {real for real in (os.path.realpath(absolute(p)) for p in paths) if not _under(real, list(roots))}
        if new:
            self.store.set_meta({ROOTS_META: json.dumps(sorted(roots | new))})

    def indexed_roots(self) -> list[str]:
        try:
            return list(json.loads(self.store.get_meta().get(ROOTS_META) or "[]"))
        except ValueError:
            return []

    def open_indexed_file(self, id_: int) -> tuple[ImageRecord, int]:
        """(record, open file descriptor) of image `id_`'s file, only if it is still the file that
        was indexed: a regular file (not a symlink, which could have been swapped in), whose real
        path lies under a folder or file passed to `add` (or the library's own folder), with the
        indexed size and mtime or, when those changed, the indexed content. The caller closes the fd."""
        rec = self.get(id_)
        path, fragment = split_entry(rec.path)  # a video's frame or a scan's slice is served as its file
        gone = f"the file of image {id_} is gone from disk: {path}"
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            raise NotFound(gone) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise Conflict(f"the file of image {id_} was replaced by a symbolic link since it was indexed; "
                               f"re-index it (lookalike index) to serve it") from None
            raise NotFound(f"{gone} ({e.strerror})") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Conflict(f"the file of image {id_} is no longer a regular file: {path}")
            real = os.path.realpath(path)
            roots = self.indexed_roots() + [os.path.realpath(self.directory)]
            if not _under(real, roots) and real != os.path.abspath(path):
                raise Conflict(f"the file of image {id_} now resolves outside the indexed folders: {path}")
            if (st.st_size, st.st_mtime) != (rec.size, rec.mtime) and not _same_content(fd, rec.sha256, fragment):
                raise Conflict(f"the file of image {id_} changed since it was indexed; re-index it (lookalike index) to serve it")
            os.lseek(fd, 0, os.SEEK_SET)
            os.set_blocking(fd, True)
            return rec, fd
        except BaseException:
            os.close(fd)
            raise

    def sync_index(self, progress: ProgressFn | None = None) -> bool:
        """Build or update the store's ANN index now, so the next search does not pay for it.
        True when searches use an ANN index (stores without one: False, nothing to do)."""
        return bool(self.store.sync_index(progress))

    def remove(self, paths: Sequence[str | os.PathLike]) -> int:
        """Forget these images (or every image under these folders, or every frame of these
        videos). Files are untouched."""
        ids: list[int] = []
        for p in paths:
            path = absolute(p)
            rec = self.store.find_path(path)
            if rec is not None:
                ids.append(rec.stored_id)
            ids += [r.stored_id for r in self.store.iter_records(where=SearchFilter(path.rstrip(os.sep) + os.sep))]
            ids += [r.stored_id for r in self.store.iter_records(where=SearchFilter(path + "#")) if file_of(r.path) == path]
        ids = sorted(set(ids))
        if ids:
            self.store.write(removes=ids)
        return len(ids)

    def is_indexed(self, path: str | os.PathLike) -> bool:
        """Whether an image is indexed at `path`, or under it when it names a folder."""
        p = absolute(path)
        return self.store.find_path(p) is not None or \
            next(iter(self.store.iter_records(limit=1, where=SearchFilter(p.rstrip(os.sep) + os.sep))), None) is not None

    def _prune(self, roots: list[str]) -> int:
        gone = [r.stored_id for r in self.store.iter_records()
                if _under(file_of(r.path), roots) and not os.path.exists(file_of(r.path))]
        if gone:
            self.store.write(removes=gone)
        return len(gone)

    def _fit_if_needed(self, entries: list) -> None:
        ext = self.extractor
        if not isinstance(ext, TrainableExtractor) or ext.is_fitted():
            return
        sample = [entries[i] for i in fit_sample(len(entries))]
        images = []
        for e in sample:
            try:
                images.append(load_image(e.path))
            except LookalikeError:
                continue
        if images:
            ext.fit(images)
            ext.save_state(self.directory / STATE_DIR)

    # -- filtering ------------------------------------------------------------------------
    def field_types(self) -> FieldTypes:
        """Field names images in this library have, with their value types (for `where`)."""
        return self.store.field_types()

    def where(self, where: str | SearchFilter | None, base: SearchFilter | None = None) -> SearchFilter | None:
        """A `where` expression (parsed and checked against this library's fields; errors
        are `InvalidQuery` with the column) or a SearchFilter, ANDed with `base` (the
        shells' --under/--since/--until). None when nothing restricts."""
        if isinstance(where, str):
            where = SearchFilter(expr=parse(where, self.store.field_types()))
        if base is None or base.is_empty():
            return where
        if where is None or where.is_empty():
            return base
        return _both(base, where)

    # -- reading --------------------------------------------------------------------------
    def embed(self, images: Sequence[ImageSource]) -> np.ndarray:
        """Vectors for images from any source, decoded exactly as the indexer decodes them."""
        ext = self.extractor
        return ext.embed([load_image(im, ext.draft_size) for im in images])

    # Only a list or tuple is several queries (a str or bytes is one).
    def search(self, query: ImageSource | int | list[ImageSource | int] | tuple[ImageSource | int, ...], k: int = 10, *,
               min_score: float | None = None, where: str | SearchFilter | None = None, text: str | None = None,
               ef: int | None = None, negative: Sequence[ImageSource | int] = (),
               weights: Sequence[float] | None = None, min_confidence: float | None = None,
               verify: bool = False, verify_depth: int | None = None, rerank: str | None = None) -> list[Hit]:
        """Images that look like `query`: a path, URL, bytes, PIL image, array, id or "id:N",
        or a list of them (images like all of them, `weights` saying how much each counts),
        with `negative` examples of what not to find (engine/combine.py). Indexed query
        images never find themselves. `text` keeps only images tagged with a label it names
        (see `search_text`). `ef`: ANN candidates per query on large libraries (higher:
        better recall, slower; ignored where search is exact). `where`: a filter expression
        over the images' fields (docs/filters.md) or a SearchFilter. Every hit has a calibrated
        `confidence` (engine/confidence.py); `min_confidence` drops hits below it. `verify`:
        "find this photo" — the best `verify_depth` candidates are checked with keypoints and
        those showing the same picture (a crop, rotated, half covered...) move to the top,
        each hit carrying its `inliers` (engine/verify.py; needs the duplicates extra). `rerank`:
        "qe" picks the k results by query expansion (engine/rerank.py), "none" takes the plain
        nearest neighbours, None the default ("qe"); either way scores are the cosine to the
        query and results come best score first (before any verification)."""
        # Out-of-range values are refused before any model work; a threshold above every score
        # simply finds nothing (shells bound it to the score's range themselves).
        k, min_score, ef = check_k(k), check_score(min_score, low=None, high=None), check_ef(ef)
        depth = check_verify(verify, verify_depth, query, negative)
        min_confidence = check_min_confidence(min_confidence, self.calibration, self.model)
        expansion = check_rerank(rerank)
        where = self.where(where)
        positives = list(query) if isinstance(query, (list, tuple)) else [query]
        if not positives:
            raise InvalidQuery("no query image given")
        check_weights(len(positives), weights)
        if depth and isinstance(positives[0], str) and positives[0].startswith(("http://", "https://")):
            positives[0] = download(positives[0])  # once: for the vector and for the keypoints
        pos, exclude = self._query_vectors(positives)
        neg, neg_exclude = self._query_vectors(list(negative))
        vec = combine_vectors(pos, neg if len(neg) else None, weights) if len(positives) > 1 or len(neg) else pos[0]
        hits = self._search_vector(vec, max(k, depth), min_score, where, exclude + neg_exclude, ef, text, min_confidence,
                                   expansion)
        if not depth:
            return hits
        _, load_query = self._explain_source(positives[0], VERIFY_DRAFT)  # ids too, read as indexed
        return self.verify_hits(load_query(), hits, k, depth)

    def verify_hits(self, query: Image.Image, hits: Sequence[Hit], k: int, depth: int | None = None) -> list[Hit]:
        """`hits` re-ranked by geometric verification against `query` (engine/verify.py): the
        best `depth` are read from disk and matched; the first `k` come back, each verified
        one with its `inliers`."""
        depth = check_depth(depth)
        head, tail = list(hits[:depth]), list(hits[depth:])
        window = self.setting(WINDOW_META)  # read once, not once per candidate

        def candidate(path: str) -> Image.Image | None:
            # None when it cannot be read now (moved meanwhile, a catalogue item without a
            # local file): it then keeps its cosine place.
            if path.startswith("item:"):
                return None
            try:
                return load_entry(path, VERIFY_DRAFT, window)
            except (LookalikeError, OSError):
                return None

        counts = verify_images(query, [h.path for h in head], candidate)
        order = verified_order([h.score for h in head], counts)
        ranked = [replace(head[i], inliers=counts[i]) for i in order] + tail
        return [replace(h, rank=rank) for rank, h in enumerate(ranked[:k], start=1)]

    def _query_vectors(self, queries: list[ImageSource | int]) -> tuple[np.ndarray, list[int]]:
        """Vectors of query images (indexed ones read from the store) and the ids to exclude."""
        vectors: list[np.ndarray | None] = []
        images: list[Image.Image] = []
        exclude: list[int] = []
        for query in queries:
            q = resolve(query, self.store, self.extractor.draft_size)
            vectors.append(q.vector)
            exclude += q.exclude
            if q.vector is None:
                assert q.image is not None  # resolve() gives a vector or an image
                images.append(q.image)
        if images:
            embedded = iter(self.extractor.embed(images))
            vectors = [v if v is not None else next(embedded) for v in vectors]
        return np.asarray(vectors, np.float32).reshape(len(vectors), self.dim), exclude

    def search_vector(self, vector: np.ndarray, k: int = 10, *, min_score: float | None = None,
                      where: str | SearchFilter | None = None, exclude: Sequence[int] = (),
                      ef: int | None = None, text: str | None = None, min_confidence: float | None = None,
                      rerank: str | None = None) -> list[Hit]:
        k, min_score, ef = check_k(k), check_score(min_score, low=None, high=None), check_ef(ef)
        min_confidence = check_min_confidence(min_confidence, self.calibration, self.model)
        return self._search_vector(vector, k, min_score, self.where(where), exclude, ef, text, min_confidence,
                                   check_rerank(rerank))

    def _search_vector(self, vector: np.ndarray, k: int, min_score: float | None, where: SearchFilter | None,
                       exclude: Sequence[int], ef: int | None, text: str | None, min_confidence: float | None,
                       expansion: QueryExpansion | None) -> list[Hit]:
        """`search_vector` with its parameters already checked (engine/params.py), once per search."""
        if text is not None:
            hits = self._search_tagged(vector, text, k, min_score, where, exclude)
            return keep_confident(with_confidence(hits, self.calibration), min_confidence)
        q = np.asarray(vector, np.float32)[None]
        gone: list[int] = []

        def ask(n: int, by: np.ndarray = q) -> list[tuple[ImageRecord, float]]:
            # The best n by `by` (the query, or its expansion), each scored by its cosine to the query.
            # Only pass `ef` when set, so stores written against the original protocol still work.
            skip = [*exclude, *gone]
            scored = (self.store.search(by, n, where, skip, ef=ef) if ef is not None else self.store.search(by, n, where, skip))[0]
            if by is not q and scored:
                cosines = self.store.vectors([i for i, _ in scored]) @ q[0]
                scored = [(i, float(c)) for (i, _), c in zip(scored, cosines)]
            if min_score is not None:
                scored = [(i, s) for i, s in scored if s >= min_score]
            records = self.store.get([i for i, _ in scored])
            return [(records[i], s) for i, s in scored if i in records]

        found = self._present(ask, k if expansion is None else expansion.k, gone)
        if expansion is not None and found:
            # alpha-QE (engine/rerank.py): the top results, as filtered as the answer, are mixed
            # into the query and the library is searched again; the best match stays (an exact
            # copy must never be lost) and that search picks the other k-1. They are shown best
            # first by their cosine to the query, the score that min_score, the confidence curve
            # and the shells' "good match" line read.
            best = found[0]
            neighbours = self.store.vectors([rec.stored_id for rec, _ in found])
            expanded = expand_queries(q, neighbours[None], np.array([[s for _, s in found]], np.float32), expansion.alpha)
            # One more asked for and the best dropped here, not passed as an exclusion: the
            # embedded store's exact search copies its matrix for any exclusion.
            others = self._present(lambda n: [p for p in ask(n + 1, expanded) if p[0].id != best[0].id][:n], k - 1,
                                   gone) if k > 1 else []
            found = sorted([best, *others], key=lambda pair: -round(pair[1], 6))  # ties (copies): the best stays first
        hits = [Hit(rank, rec.stored_id, rec.path, round(s, 6), rec.fields) for rank, (rec, s) in enumerate(found, start=1)]
        return keep_confident(with_confidence(hits, self.calibration), min_confidence)

    def _present(self, ask, k: int, gone: list[int]) -> list[tuple[ImageRecord, float]]:
        """The best `k` results whose files still exist. `ask(n)` returns the best n (record,
        score) pairs leaving out `gone`; it is asked for a few more than k, and again while
        files turn out to be gone, so deleted files never come back in results. Costs one
        stat per hit returned (plus one per gone file); gone images are queued for removal."""
        extra = max(2, k // 4)
        found: list[tuple[ImageRecord, float]] = []
        for _ in range(4):
            found = []
            batch = ask(k + extra)
            news = 0
            for rec, s in batch:
                if len(found) == k:
                    break
                if rec.id in gone:
                    continue
                if record_file_exists(rec.path):
                    found.append((rec, s))
                else:
                    gone.append(rec.id)
                    self._queue_gone(rec)
                    news += 1
            if len(found) == k or len(batch) < k + extra or not news:
                break
            extra *= 4
        self._forget_gone()
        return found

    def _queue_gone(self, rec: ImageRecord) -> None:
        # Only when its folder is still there: a whole missing folder may be an unmounted
        # drive, whose images must come back when it does (`index --prune` forgets them).
        if record_folder_exists(rec.path):
            self._gone.add(rec.stored_id)

    def _forget_gone(self) -> None:
        """Remove the queued gone images; a library that cannot be written now (read-only,
        busy) keeps them queued for the next search."""
        if not self._gone:
            return
        ids = sorted(self._gone)
        try:
            records = self.store.get(ids)
            still_gone = [i for i, r in records.items() if not record_file_exists(r.path)]  # not re-created meanwhile
            if still_gone:
                self.store.write(removes=still_gone)
            self._gone.difference_update(ids)
        except LookalikeError:
            pass

    @property
    def calibration(self) -> Calibration | None:
        """This model build's confidence curve (models/calibrate.py), or None; looked up once
        (the build cannot change while the library is open: `open` checks it)."""
        if not hasattr(self, "_calibration"):
            self._calibration = calibration_for(self.model)
        return self._calibration

    def verdict(self, hits: Sequence[Hit]) -> str | None:
        """"good match" / "no good match" for an image search's hits (None: uncalibrated model)."""
        cal = self.calibration
        return verdict(hits, cal.good_match) if cal is not None else verdict(hits)

    def _search_tagged(self, vector: np.ndarray, text: str, k: int, min_score: float | None,
                       where: SearchFilter | None, exclude: Sequence[int]) -> list[Hit]:
        """Exact similarity among the images that show what `text` names with at least
        FILTER_CONFIDENCE: with 50 classes stored per image, "has a matching class" alone
        would keep nearly every image."""
        skip = set(exclude)
        tagged = [rec for rec, _ in rank_by_tag(self.store, text, max(1, self.store.count()), where, FILTER_CONFIDENCE)
                  if rec.id not in skip]
        if not tagged:
            return []
        sims = self.store.vectors([rec.stored_id for rec in tagged]) @ np.asarray(vector, np.float32)
        order = sorted(range(len(tagged)), key=lambda i: (-float(sims[i]), tagged[i].id))
        ranked = [(tagged[i], round(float(sims[i]), 6)) for i in order if min_score is None or sims[i] >= min_score]
        gone: list[int] = []
        scored = self._present(lambda n: [(rec, s) for rec, s in ranked if rec.id not in gone][:n], k, gone)
        return [Hit(rank, rec.stored_id, rec.path, s, rec.fields) for rank, (rec, s) in enumerate(scored, start=1)]

    def explain(self, query: ImageSource | int, result: ImageSource | int) -> tuple[Explanation, Image.Image, Image.Image]:
        """Where `query` and `result` (paths, URLs, images, ids or "id:N") agree, as a heat map on
        each (engine/explain.py), with the two images as the model saw them (kept for the next
        explanation of the same file: read them, do not modify them)."""
        ext = self.extractor
        (q_image, q_emb, q_map), (r_image, r_emb, r_map) = self._feature_maps.maps(
            ext, [self._explain_source(x, ext.draft_size) for x in (query, result)])
        score, a, b = agreement(q_emb, q_map, r_emb, r_map)
        cal = self.calibration
        conf = None if cal is None else round(float(cal.confidence(score)), 4)
        return Explanation(round(score, 6), conf, a, b), q_image, r_image

    def _explain_source(self, source: ImageSource | int, draft_size: int | None) -> tuple[tuple | None, Callable[[], Image.Image]]:
        """(cache key, loader) of an image to explain: indexed images (ids) are keyed by their
        file, so a changed file is read again; other sources are not cached."""
        if isinstance(source, str) and source.strip().startswith("id:"):
            source = self.record(source).id  # type: ignore[assignment]
        if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
            path = Path(self.get(int(source)).path)
            try:
                st = path.stat()
                key: tuple | None = (str(path), st.st_size, st.st_mtime_ns, draft_size)
            except OSError:
                key = None  # a frame or slice entry, or a gone file: load_image says what is wrong
            return key, lambda: load_image(path, draft_size)
        other = cast(ImageSource, source)  # not an id, so a path, URL, bytes, image or array
        return None, lambda: self._image_of(other, draft_size)

    def _image_of(self, source: ImageSource, draft_size: int | None) -> Image.Image:
        """An image from a path, URL, bytes, PIL image or array (ids: `_explain_source`)."""
        q = resolve(source, self.store, draft_size)
        if q.image is not None:
            return q.image
        return load_image(Path(q.label), draft_size)  # an indexed, unchanged file: its vector was known

    def search_text(self, text: str, k: int = 10, *, min_score: float | None = None,
                    where: str | SearchFilter | None = None, min_confidence: float | None = None) -> list[Hit]:
        """Images showing what `text` names: an English noun and every ImageNet class that
        is a kind of it in WordNet ("dog": every breed), or label words (engine/tags.py;
        commas separate alternatives). Here `score` is the classifier's confidence: the
        summed probability of the image's matching classes, descending; being a probability
        already, it is also the hit's `confidence`."""
        k, min_score = check_k(k), check_score(min_score, low=None, high=None)
        min_confidence = check_score(min_confidence, "min_confidence", low=0.0, high=1.0)
        where = self.where(where)
        gone: list[int] = []

        def ask(n: int) -> list[tuple[ImageRecord, float]]:
            return [(rec, s) for rec, s in rank_by_tag(self.store, text, n + len(gone), where, min_score) if rec.id not in gone][:n]

        ranked = self._present(ask, k, gone)
        hits = [Hit(rank, rec.stored_id, rec.path, round(s, 6), rec.fields, round(min(max(s, 0.0), 1.0), 4))
                for rank, (rec, s) in enumerate(ranked, start=1)]
        return keep_confident(hits, min_confidence)

    def expand(self, word: str) -> Expansion:
        """The ImageNet classes a search word names (through WordNet's hierarchy)."""
        return expand(word)

    def vocabulary(self, counts: bool = False, min_confidence: float = 0.5) -> list[tuple[VocabularyEntry, int | None]]:
        """Every searchable word; with `counts`, the number of images in this library that
        most likely show it (summed probability of its classes >= `min_confidence`)."""
        entries = vocabulary()
        if not counts:
            return [(e, None) for e in entries]
        labels = imagenet_labels()
        index = {label: i for i, label in enumerate(dict.fromkeys(labels))}  # two labels occur twice ("crane")
        per_image = []
        for rec in self.store.iter_records():
            probs = np.zeros(len(index), np.float32)
            for label, p in rec.tags:
                if label in index:
                    probs[index[label]] = p
            per_image.append(probs)
        if not per_image:
            return [(e, 0) for e in entries]
        matrix = np.stack(per_image)
        return [(e, int((matrix[:, sorted({index[labels[c]] for c in e.classes})].sum(1) >= min_confidence).sum()))
                for e in entries]

    def stored_classes(self, sample: int = 100) -> int:
        """How many class probabilities this library keeps per image (libraries indexed before
        word search kept 5: broad words then find fewer images until re-indexed)."""
        return max((len(r.tags) for r in self.store.iter_records(0, sample)), default=0)

    def image_tags(self, id_: int) -> list[tuple[str, float]]:
        """An image's stored classes with their probabilities, most likely first."""
        return list(self.get(id_).tags)

    def duplicates(self, thresholds: DuplicateThresholds | None = None, tiers: Sequence[str] = TIERS, *,
                   where: str | SearchFilter | None = None, progress: DuplicateProgressFn | None = None,
                   keep: KeepPolicy | str | None = None) -> DuplicateReport:
        """Disjoint groups of exact copies, near-duplicates and similar shots among the images
        `where` selects, each naming the image to keep by the `keep` policy
        (engine/duplicates.py, engine/keep_policy.py)."""
        policy = keep if isinstance(keep, KeepPolicy) else KeepPolicy.parse(keep)
        return find_duplicates(self.store, thresholds, tiers, self.where(where), progress, keep=policy,
                               head_dim=model_info(self.model).head_dim)

    def cleanup(self, choices: Sequence[Choice], mode: str, move_to: str | os.PathLike | None = None, *,
                dry_run: bool = True, log: str | os.PathLike | None = None) -> CleanupReport:
        """Move (`mode="move"`, into `move_to`) or trash the images each choice does not keep;
        only a plan unless `dry_run` is False; an undo log is written (engine/cleanup.py)."""
        planned = cleanup.plan(self, choices, mode, move_to)
        return planned if dry_run else cleanup.apply(self, planned, log)

    def undo_cleanup(self, log: str | os.PathLike) -> UndoReport:
        """Put back every file a cleanup's undo log names."""
        return cleanup.undo(self, log)

    # -- catalogue (engine/catalogue/) ----------------------------------------------------------
    def import_items(self, source: str | os.PathLike, id_column: str, image_columns: Sequence[str], **options):
        """Upsert a shop's product file (CSV/TSV/JSONL/parquet); see engine/catalogue/sync.py."""
        from .catalogue import import_items

        return import_items(self, source, id_column, list(image_columns), **options)

    def similar_items(self, item: str, k: int = 10, **options):
        """Items that look like item `item` (never itself): where=, colour=, collapse=, distinct=
        (engine/catalogue/similar.py)."""
        from .catalogue.items import item_path
        from .catalogue.similar import similar

        return similar(self, item_path(item), k, **options)

    def get(self, id_: int) -> ImageRecord:
        """The record of image `id_`; `NotFound` when there is none."""
        rec = self.store.get([id_]).get(id_)
        if rec is None:
            raise no_image(id_)
        return rec

    def record(self, id_: int | str) -> ImageRecord:
        """One image's record, its `fields` included, by id or "id:N" (for `info id:N`)."""
        if isinstance(id_, str):
            text = id_.strip().removeprefix("id:")
            if not text.isdigit():
                raise NotFound(f"{id_!r} is not an image id (use id:N)")
            id_ = int(text)
        return self.get(id_)

    def records(self, offset: int = 0, limit: int | None = None, where: str | SearchFilter | None = None,
                sort: str | None = None) -> list[ImageRecord]:
        """Records in id order, or by `sort`: "date" (capture time, else file time), "folder"
        or "name"; "-date" etc. reverse it (engine/browse.py). `where` restricts them
        (offset/limit count matching ones)."""
        flt = self.where(where)
        if check_sort(sort) in (None, "id"):
            return list(self.store.iter_records(offset, limit, flt))
        ordered = sort_records(self.store.iter_records(where=flt), sort)  # type: ignore[arg-type]
        return ordered[offset:None if limit is None else offset + limit]

    def query_vector(self, query: ImageSource | int, window: str | None = None) -> tuple[np.ndarray, list[int]]:
        """One query's vector (read from the store for an indexed image, else embedded; scans
        windowed by `window`) and the ids it must not find (itself)."""
        q = resolve(query, self.store, self.extractor.draft_size, window)
        vec = q.vector if q.vector is not None else self.extractor.embed([q.image])[0]  # type: ignore[list-item]
        return vec, list(q.exclude)

    def setting(self, name: str) -> str | None:
        """A library-wide setting (e.g. the scan window chosen when it was created)."""
        return self.store.get_meta().get(name)

    def export_items(self, path: Path | None) -> int:
        """Write every catalogue item and its fields to `path` (.csv/.jsonl; None: stdout)."""
        from .catalogue.export import export_items

        return export_items(self.store, path)

    def records_by_id(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        """Records of those ids that exist (missing ones are left out, not an error)."""
        return self.store.get(list(ids)) if ids else {}

    def find_path(self, path: str | os.PathLike) -> ImageRecord | None:
        """The record indexed under this file path, if any."""
        return self.store.find_path(absolute(path))

    def has_content(self, sha256: str) -> bool:
        """Whether any indexed image has exactly this content."""
        return bool(self.store.find_sha(sha256))

    def count(self) -> int:
        return self.store.count()

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


def _both(a: SearchFilter, b: SearchFilter) -> SearchFilter:
    """Both filters must hold. Labels intersect; the narrower path prefix and bounds win."""
    prefixes = [p for p in (a.path_prefix, b.path_prefix) if p]
    if len(prefixes) == 2 and not (prefixes[0].startswith(prefixes[1]) or prefixes[1].startswith(prefixes[0])):
        return SearchFilter(labels=[])  # disjoint folders: nothing matches
    labels = a.labels if b.labels is None else b.labels if a.labels is None else [x for x in a.labels if x in set(b.labels)]
    lows = [x for x in (a.min_mtime, b.min_mtime) if x is not None]
    highs = [x for x in (a.max_mtime, b.max_mtime) if x is not None]
    exprs = [e for e in (a.expr, b.expr) if e is not None]
    return replace(a, path_prefix=max(prefixes, key=len) if prefixes else None, labels=labels,
                   min_mtime=max(lows) if lows else None, max_mtime=min(highs) if highs else None,
                   expr=exprs[0] if len(exprs) == 1 else And(tuple(exprs)) if exprs else None)


def _sha256_fd(fd: int) -> str:
    h = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


def _same_content(fd: int, sha256: str, fragment: str | None) -> bool:
    """Whether the open file still has the indexed content (a frame's or slice's hash derives
    from its file's: engine/medical_index.entry_sha, used by the video and scan indexers alike)."""
    return entry_sha(_sha256_fd(fd), fragment) == sha256


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _dir_size(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) if d.exists() else 0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
