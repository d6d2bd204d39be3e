"""An approximate nearest-neighbour index derived from the embedded store's SQLite database.

SQLite stays the source of truth. This index is a persisted *cache* of it, tagged with the
position in the store's change log (`vector_log`, filled by triggers in the same transaction
as every vector write) that it covers, so a stale or missing index is detected, never trusted:

- search runs HNSW (faiss) over compact vectors: an uncentred PCA projection (learned on a
  sample of the library, stored with it) to `pca_dim` dimensions, 8-bit scalar-quantised;
- the HNSW candidates are re-ranked exactly against the full float32 vectors, kept in a
  memory-mapped file in label order, so returned scores are exact cosine similarities;
- changes made after the covered log position (by this or any other process) are caught up
  at search time: changed ids are tombstoned in the graph and their current vectors (if any)
  are searched exactly in a small in-memory "delta"; the delta is merged into the graph and
  persisted once it grows, and the graph is rebuilt when too many labels are dead.

Files in `<library>/index/` (a new generation is written beside the old, then `manifest.json`
is replaced atomically, so readers never see a half-written index):
    manifest.json         what the files cover (log position, labels, parameters)
    pca-<build>.npy       dim x pca_dim projection
    vectors-<build>.f32   full vectors, row = label, append-only (rows past n_labels ignored)
    graph-<gen>.faiss     HNSW + SQ8 codes
    ids-<gen>.npy         label -> image id
    dead-<gen>.npy        label -> tombstoned (bool)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
import sqlite3
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

INDEX_DIR = "index"
FORMAT = 1
PCA_SAMPLE = 20_000  # vectors the projection is learned from
READ_CHUNK = 20_000  # vectors read from SQLite at a time while building
# Queries per search below which products are computed by numpy's own loops, not BLAS:
# OpenBLAS hands a 1 x 1280 x 384 product to its thread pool, and waking that pool on a busy
# machine cost 15-100 ms per query (measured), against 0.07 ms single-threaded.
SMALL_BATCH = 64

# (done, total) -> None while building.
BuildProgress = Callable[[int, int], None]


@dataclass
class AnnParams:
    """Construction and search settings. `ef` is the default recall/latency knob: the HNSW
    candidate list size, of which the best `rerank` are re-ranked exactly. Defaults measured
    at 1M images in docs/performance.md ("Search at scale")."""

    pca_dim: int = 384
    m: int = 32
    ef_construction: int = 80
    ef: int = 160
    merge_min: int = 1_000  # pending changes before they are merged into the files
    # Bits per graph-vector component: 8 (SQ8), 6, 4, or 16 (fp16).
    quant_bits: int = 8
    # Candidates re-ranked exactly (the best of the `ef` the graph walk keeps); 0: all `ef`.
    rerank: int = 48

    @classmethod
    def from_env(cls) -> AnnParams:
        from ..config import ann_overrides
        from ..errors import InvalidQuery

        p = cls()
        for key, value in ann_overrides().items():
            setattr(p, key, value)
        if p.quant_bits not in QUANTISERS:
            raise InvalidQuery(f"$LOOKALIKE_ANN_QUANT_BITS must be one of {', '.join(map(str, sorted(QUANTISERS)))}, "
                               f"got {p.quant_bits}")
        return p


@dataclass
class _Manifest:
    format: int
    dim: int
    pca_dim: int
    m: int
    ef_construction: int
    log_id: str
    build: str
    gen: str
    n_labels: int
    covered_seq: int
    quant_bits: int = 8  # absent from indexes written before it was a setting: they are SQ8

    @classmethod
    def read(cls, directory: Path) -> _Manifest | None:
        try:
            data = json.loads((directory / "manifest.json").read_text())
            m = cls(**data)
        except (OSError, ValueError, TypeError):
            return None
        return m if m.format == FORMAT else None

    def write(self, directory: Path) -> None:
        tmp = directory / f"manifest.json.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, directory / "manifest.json")


class AnnIndex:
    """One loaded generation of the index plus the in-memory delta since its log position."""

    def __init__(self, directory: Path, manifest: _Manifest, graph, pca: np.ndarray,
                 vectors: np.ndarray, ids: np.ndarray, dead: np.ndarray) -> None:
        self.directory = directory
        self.manifest = manifest
        self.graph = graph
        self.pca = pca
        self.vectors = vectors  # memory-mapped [n_labels, dim] float32
        self.ids = ids
        self.dead = dead
        self.synced_seq = manifest.covered_seq
        self.delta_ids = np.zeros(0, np.int64)
        self.delta = np.zeros((0, manifest.dim), np.float32)
        self._bitmap: np.ndarray | None = None  # live labels for faiss, rebuilt after changes
        self.merge_min = AnnParams.merge_min
        self.rerank = AnnParams.rerank

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, library_dir: Path, dim: int, log_id: str) -> AnnIndex | None:
        """The persisted index, or None when missing, unreadable, or made for another
        dimension or another database (`log_id` is the store's change-log identity)."""
        import faiss

        directory = library_dir / INDEX_DIR
        m = _Manifest.read(directory)
        if m is None or m.dim != dim or m.log_id != log_id:
            return None
        try:
            graph = faiss.read_index(str(directory / f"graph-{m.gen}.faiss"))
            pca = np.load(directory / f"pca-{m.build}.npy")
            vectors = _map(directory / f"vectors-{m.build}.f32", m.n_labels, dim)
            ids = np.load(directory / f"ids-{m.gen}.npy")
            dead = np.load(directory / f"dead-{m.gen}.npy")
        except (OSError, ValueError, RuntimeError):
            return None
        if graph.ntotal != m.n_labels or len(ids) != m.n_labels or len(dead) != m.n_labels:
            return None
        return cls(directory, m, graph, pca, vectors, ids, dead)

    @property
    def live_count(self) -> int:
        return int(len(self.ids) - self.dead.sum()) + len(self.delta_ids)

    # -- staying in step with the store ------------------------------------------------------
    def catch_up(self, db: sqlite3.Connection, seq: int) -> None:
        """Apply every change logged after `synced_seq` up to `seq`: tombstone the changed ids'
        labels, and hold their current vectors (if they still exist) in the exact delta."""
        if seq <= self.synced_seq:
            return
        changed = np.array([r[0] for r in db.execute(
            "SELECT DISTINCT id FROM vector_log WHERE seq > ? AND seq <= ?", (self.synced_seq, seq))], dtype=np.int64)
        if len(changed):
            hit = np.isin(self.ids, changed)
            if hit.any():
                self.dead = self.dead.copy() if not self.dead.flags.writeable else self.dead
                self.dead[hit] = True
                self._bitmap = None
            keep = ~np.isin(self.delta_ids, changed)
            fresh_ids, fresh = _read_vectors(db, changed.tolist(), self.manifest.dim)
            self.delta_ids = np.concatenate([self.delta_ids[keep], fresh_ids])
            self.delta = np.concatenate([self.delta[keep], fresh]) if len(fresh) else self.delta[keep]
        self.synced_seq = seq

    def needs_merge(self) -> bool:
        return len(self.delta_ids) >= max(self.merge_min, self.manifest.n_labels // 50)

    def needs_rebuild(self) -> bool:
        return int(self.dead.sum()) > max(self.merge_min, len(self.ids) // 4)

    def merge(self) -> bool:
        """Add the delta to the graph and persist a new generation (delta becomes empty).
        False when another process changed the files since we loaded them: reload instead."""
        if not len(self.delta_ids) and self.synced_seq == self.manifest.covered_seq:
            return True
        m = self.manifest
        with _locked(self.directory):
            current = _Manifest.read(self.directory)
            if current is None or current.gen != m.gen:
                return False
            path = self.directory / f"vectors-{m.build}.f32"
            with open(path, "r+b") as f:
                f.truncate(m.n_labels * m.dim * 4)  # drop rows a crashed merge may have appended
                f.seek(0, os.SEEK_END)
                f.write(np.ascontiguousarray(self.delta, np.float32).tobytes())
                f.flush()
                os.fsync(f.fileno())
            if len(self.delta):
                with _threads(1 if len(self.delta) < 10_000 else None):
                    self.graph.add(_project(self.delta, self.pca))
            self.ids = np.concatenate([self.ids, self.delta_ids])
            self.dead = np.concatenate([self.dead, np.zeros(len(self.delta_ids), bool)])
            n = len(self.ids)
            self.vectors = _map(path, n, m.dim)
            self.manifest = _Manifest(**{**asdict(m), "gen": uuid.uuid4().hex[:12], "n_labels": n,
                                         "covered_seq": self.synced_seq})
            _write_generation(self.directory, self.manifest, self.graph, self.ids, self.dead)
            self.delta_ids = np.zeros(0, np.int64)
            self.delta = np.zeros((0, m.dim), np.float32)
            self._bitmap = None
        return True

    # -- searching ----------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, ef: int, blocked_ids: np.ndarray | None = None,
               allowed_ids: np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """Top-k (id, exact cosine) per query among live labels + delta, honouring the filters."""
        import faiss

        blocked = blocked_ids if blocked_ids is not None and len(blocked_ids) else None
        # Excluded ids (a few: "more like this") are dropped after the graph walk, which asks
        # for that many more; an allow-list (a filter) restricts the walk itself.
        extra = len(blocked) if blocked is not None else 0
        want = max(ef, k) + extra
        # The graph walk keeps `want` candidates; the best `pool` of them (by the compact
        # vectors' scores) are re-ranked exactly, which costs a random read of a full vector each.
        pool = min(want, max(self.rerank, k) + extra) if self.rerank else want
        mask = None
        if allowed_ids is not None:
            mask = ~self.dead & np.isin(self.ids, allowed_ids)
        d_ok = np.ones(len(self.delta_ids), bool)
        if allowed_ids is not None:
            d_ok &= np.isin(self.delta_ids, allowed_ids)
        d_ids, d_vecs = self.delta_ids[d_ok], self.delta[d_ok]

        if mask is not None and int(mask.sum()) <= 4 * want:
            # A selective filter: exact over the few allowed labels beats a graph walk.
            labels = np.flatnonzero(mask)
            cands = [labels for _ in queries]
        else:
            if mask is None:
                if self._bitmap is None:
                    self._bitmap = np.packbits(~self.dead, bitorder="little") if self.dead.any() else np.zeros(0, np.uint8)
                bitmap = self._bitmap
            else:
                bitmap = np.packbits(mask, bitorder="little")
            params = faiss.SearchParametersHNSW(efSearch=want)  # type: ignore[attr-defined]  # missing from faiss's own stubs
            if len(bitmap):
                sel = faiss.IDSelectorBitmap(len(self.ids), faiss.swig_ptr(bitmap))
                params.sel = sel
            with _threads(1 if len(queries) < 64 else None):
                _, found = self.graph.search(_project(queries, self.pca), pool, params=params)
            cands = [row[row >= 0] for row in found]
        out = []
        if blocked is not None:
            keep = ~np.isin(d_ids, blocked)
            d_ids, d_vecs = d_ids[keep], d_vecs[keep]
        for q, labels in zip(queries, cands):
            labels = np.sort(labels)  # sequential reads from the memory map
            if blocked is not None:
                labels = labels[~np.isin(self.ids[labels], blocked)]
            ids = np.concatenate([self.ids[labels], d_ids])
            vecs = self.vectors[labels]
            scores = np.concatenate([_dot(vecs, q), _dot(d_vecs, q)]) if len(d_ids) else _dot(vecs, q)
            out.append(top_k(ids, scores, k))
        return out


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Best k by score, ties broken by id, as the exact search orders them."""
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(scores))
    part = part[np.lexsort((ids[part], -scores[part]))]
    return [(int(ids[j]), float(scores[j])) for j in part[:k]]


def build(library_dir: Path, db_path: Path, dim: int, log_id: str, params: AnnParams,
          progress: BuildProgress | None = None) -> AnnIndex:
    """Build a fresh index from the database (a consistent read snapshot on its own
    connection), write it as a new build, and return it loaded."""
    progress = progress or (lambda done, total: None)
    directory = library_dir / INDEX_DIR
    directory.mkdir(parents=True, exist_ok=True)
    build_id = uuid.uuid4().hex[:12]
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0, isolation_level=None)
    try:
        db.execute("BEGIN")  # one snapshot: the vectors and the log position agree
        seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM vector_log").fetchone()[0])
        total = int(db.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        vec_path = directory / f"vectors-{build_id}.f32"
        ids = np.zeros(total, np.int64)
        n = 0
        with open(vec_path, "wb") as f:
            for chunk_ids, chunk in _iter_all(db, dim):
                f.write(chunk.tobytes())
                ids[n:n + len(chunk_ids)] = chunk_ids
                n += len(chunk_ids)
                progress(n // 4, total)
            f.flush()
            os.fsync(f.fileno())
        db.execute("COMMIT")
    finally:
        db.close()
    ids = ids[:n]
    vectors = _map(vec_path, n, dim)
    pca, graph = build_graph(vectors, params, lambda done: progress(n // 4 + (done * 3) // 4, total))
    np.save(directory / f"pca-{build_id}.npy", pca)
    pca_dim = pca.shape[1]
    manifest = _Manifest(FORMAT, dim, pca_dim, params.m, params.ef_construction, log_id, build_id,
                         uuid.uuid4().hex[:12], n, seq, params.quant_bits)
    dead = np.zeros(n, bool)
    with _locked(directory):
        _write_generation(directory, manifest, graph, ids, dead)
    progress(total, total)
    index = AnnIndex(directory, manifest, graph, pca, vectors, ids, dead)
    index.merge_min = params.merge_min
    index.rerank = params.rerank
    return index


def build_graph(vectors: np.ndarray, params: AnnParams,
                progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, object]:
    """The projection and the HNSW graph over `vectors` [n, dim] (float32, may be memory-mapped):
    (dim x pca_dim projection, faiss index). Label i is row i."""
    n, dim = vectors.shape
    pca_dim = min(params.pca_dim, dim)
    rng = np.random.default_rng(0)
    sample = np.asarray(vectors[np.sort(rng.choice(n, min(n, PCA_SAMPLE), replace=False))]) if n else np.zeros((0, dim), np.float32)
    pca = _learn_projection(sample, pca_dim)
    graph = _new_graph(pca_dim, params)
    with _threads(1 if n < 50_000 else None):
        if len(sample):
            graph.train(_project(sample, pca))
        step = 50_000
        for s in range(0, n, step):
            graph.add(_project(np.asarray(vectors[s:s + step]), pca))
            if progress:
                progress(min(n, s + step))
    return pca, graph


QUANTISERS = {8: "QT_8bit", 6: "QT_6bit", 4: "QT_4bit", 16: "QT_fp16"}


def _new_graph(pca_dim: int, params: AnnParams):
    import faiss

    if params.quant_bits not in QUANTISERS:
        raise ValueError(f"ANN quant_bits must be one of {sorted(QUANTISERS)}, got {params.quant_bits}")
    qtype = getattr(faiss.ScalarQuantizer, QUANTISERS[params.quant_bits])
    # faiss's stubs type the quantizer argument as a ScalarQuantizer; SWIG takes the enum int
    graph = faiss.IndexHNSWSQ(pca_dim, qtype, params.m, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = params.ef_construction
    return graph


def remove_index(library_dir: Path) -> None:
    directory = library_dir / INDEX_DIR
    if directory.exists():
        for p in directory.iterdir():
            with contextlib.suppress(OSError):
                p.unlink()


def index_size_bytes(library_dir: Path) -> int:
    directory = library_dir / INDEX_DIR
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) if directory.exists() else 0


# -- helpers ----------------------------------------------------------------------------------
def _learn_projection(sample: np.ndarray, pca_dim: int) -> np.ndarray:
    """Top eigenvectors of the *uncentred* second moment: projecting onto them preserves inner
    products (what cosine search ranks by) better than a mean-centred PCA would."""
    from scipy.linalg import eigh
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # a one-off cost; BLAS threads thrash on a busy machine
        return _projection(sample, pca_dim, eigh)


def _projection(sample: np.ndarray, pca_dim: int, eigh) -> np.ndarray:
    n, dim = sample.shape
    if n == 0:
        return np.eye(dim, pca_dim, dtype=np.float32)
    x = np.asarray(sample, np.float32)
    if n < dim:
        # Few vectors: the n x n Gram matrix has the same spectrum, and is cheaper.
        vals, u = np.linalg.eigh((x @ x.T).astype(np.float64))
        keep = np.argsort(vals)[::-1][:pca_dim]
        vecs = x.T.astype(np.float64) @ (u[:, keep] / np.sqrt(np.maximum(vals[keep], 1e-12)))
        if vecs.shape[1] < pca_dim:  # pad with an orthonormal complement (rank < pca_dim)
            q, _ = np.linalg.qr(np.concatenate([vecs, np.eye(dim)[:, : pca_dim]], axis=1))
            vecs = q[:, :pca_dim]
        return np.ascontiguousarray(vecs, dtype=np.float32)
    _, vecs = eigh((x.T @ x).astype(np.float64), subset_by_index=[dim - pca_dim, dim - 1])
    return np.ascontiguousarray(vecs[:, ::-1], dtype=np.float32)


def _map(path: Path, n: int, dim: int) -> np.ndarray:
    """The re-rank vectors, memory-mapped for random access: MADV_RANDOM stops the kernel from
    mapping (and counting as resident) the neighbouring rows of every row a query touches."""
    if n == 0:
        return np.zeros((0, dim), np.float32)
    vectors = np.memmap(path, dtype=np.float32, mode="r", shape=(n, dim))
    with contextlib.suppress(AttributeError, OSError, ValueError):
        vectors._mmap.madvise(mmap.MADV_RANDOM)  # type: ignore[attr-defined]  # numpy's private mmap handle
    return vectors


def _project(x: np.ndarray, pca: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(x).astype(np.float32, copy=False)
    if len(x) < SMALL_BATCH:
        return np.ascontiguousarray(np.einsum("qd,dp->qp", x, pca))
    return np.ascontiguousarray(x @ pca)


def _dot(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    """vectors @ q for the few re-ranked rows (see SMALL_BATCH)."""
    return np.einsum("nd,d->n", vectors, q)


def _iter_all(db: sqlite3.Connection, dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    cur = db.execute("SELECT id, vector FROM images ORDER BY id")
    while rows := cur.fetchmany(READ_CHUNK):
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        yield ids, np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim)


def _read_vectors(db: sqlite3.Connection, ids: list[int], dim: int) -> tuple[np.ndarray, np.ndarray]:
    found_ids: list[int] = []
    blobs: list[bytes] = []
    for s in range(0, len(ids), 500):
        chunk = ids[s:s + 500]
        marks = ",".join("?" * len(chunk))
        for id_, blob in db.execute(f"SELECT id, vector FROM images WHERE id IN ({marks}) ORDER BY id", chunk):
            found_ids.append(int(id_))
            blobs.append(blob)
    vecs = np.frombuffer(b"".join(blobs), np.float32).reshape(len(blobs), dim) if blobs else np.zeros((0, dim), np.float32)
    return np.array(found_ids, np.int64), vecs


def _write_generation(directory: Path, m: _Manifest, graph, ids: np.ndarray, dead: np.ndarray) -> None:
    import faiss

    faiss.write_index(graph, str(directory / f"graph-{m.gen}.faiss"))
    np.save(directory / f"ids-{m.gen}.npy", ids)
    np.save(directory / f"dead-{m.gen}.npy", dead)
    m.write(directory)
    # Older generations and builds: readers that loaded them keep their open files/maps.
    for p in directory.iterdir():
        stem = p.name.split(".")[0]
        tag = stem.rsplit("-", 1)[-1] if "-" in stem else None
        if tag and tag not in (m.gen, m.build) and not p.name.startswith("manifest"):
            with contextlib.suppress(OSError):
                p.unlink()


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run small faiss calls on one thread: OpenMP's fork/join (and its spin-waiting on a busy
    machine) costs far more than a single query or a small add."""
    import faiss

    if n is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer of index files at a time, across processes."""
    with open(directory / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
