"""The default store: one SQLite file in the library directory holds every record *and* its
vector, so a single transaction covers both and an interrupted write leaves nothing
half-done. Small libraries are searched exactly on an in-memory matrix, reloaded when anyone
commits; from `ann_threshold` images on, an ANN index derived from the database (see
ann_index.py) answers instead, kept in step through a change log filled by triggers."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import LibraryBusyError, LookalikeError
from . import ann_index
from .ann_index import AnnIndex, AnnParams, BuildProgress
from .base import ImageRecord, ScoredIds, SearchFilter, Upsert

DB_NAME = "library.sqlite"
SCHEMA_VERSION = "1"
ANN_THRESHOLD = 20_000  # below this many images exact search is fast enough (a few ms)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    added REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
"""

# Every vector change, in commit order, written by SQLite itself in the writer's transaction:
# the ANN index records the last seq it covers and catches up from here (any process, any
# code version that writes through SQL).
_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS vector_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS vector_log_insert AFTER INSERT ON images
    BEGIN INSERT INTO vector_log (id) VALUES (NEW.id); END;
CREATE TRIGGER IF NOT EXISTS vector_log_update AFTER UPDATE OF vector, id ON images
    BEGIN INSERT INTO vector_log (id) VALUES (OLD.id); INSERT INTO vector_log (id) VALUES (NEW.id); END;
CREATE TRIGGER IF NOT EXISTS vector_log_delete AFTER DELETE ON images
    BEGIN INSERT INTO vector_log (id) VALUES (OLD.id); END;
"""

_COLUMNS = "id, path, sha256, size, mtime, width, height, tags, added"


class EmbeddedStore:
    def __init__(self, directory: str | Path, busy_timeout_s: float = 30.0, *,
                 ann_threshold: int | None = None, ann_params: AnnParams | None = None) -> None:
        """`ann_threshold`: image count from which searches use the ANN index (default
        $LOOKALIKE_ANN_THRESHOLD or 20,000); `ann_params`: its construction/search settings."""
        self.directory = Path(directory)
        env_threshold = os.environ.get("LOOKALIKE_ANN_THRESHOLD")
        self.ann_threshold = ann_threshold if ann_threshold is not None else int(env_threshold or ANN_THRESHOLD)
        self.ann_params = ann_params or AnnParams.from_env()
        # Set when the library can only be read (read-only directory or disk, or a disk too
        # full to open it normally): searching works, writes raise this error.
        self.write_refusal: LookalikeError | None = None
        db = self.directory / DB_NAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if db.exists() and not os.access(self.directory, os.W_OK):
                self._db = self._open_read_only(db, busy_timeout_s)
                self.write_refusal = _read_only_error(self.directory)
            else:
                self._db = self._open_read_write(db, busy_timeout_s)
        except sqlite3.DatabaseError as e:
            error = _as_user_error(e, self.directory)
            if not (db.exists() and "disk is full" in str(error)):
                raise error from None
            try:  # SQLite cannot even create its -shm file: still let people search
                self._db = self._open_read_only(db, busy_timeout_s)
            except sqlite3.Error:
                raise error from None
            self.write_refusal = error
        except OSError as e:
            raise LookalikeError(f"cannot open library {self.directory}: {e.strerror or e}") from None
        try:
            self._log_id = self._ensure_log()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise _as_user_error(e, self.directory) from None
        self._lock = threading.RLock()
        self._matrix: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        self._seen_version: tuple[int, int] | None = None
        self._local_writes = 0
        self._ann: AnnIndex | None = None
        self._ann_checked_seq: int | None = None  # log position the exact/ANN choice was made at

    # -- plumbing -------------------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return self.write_refusal is not None

    @staticmethod
    def _open_read_write(db: Path, timeout: float) -> sqlite3.Connection:
        con = sqlite3.connect(db, timeout=timeout, check_same_thread=False, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            if con.execute("SELECT name FROM sqlite_master WHERE name='images'").fetchone() is None:
                con.executescript(_SCHEMA)  # idempotent: IF NOT EXISTS throughout
            return con
        except BaseException:
            con.close()
            raise

    @staticmethod
    def _open_read_only(db: Path, timeout: float) -> sqlite3.Connection:
        """A library on a read-only disk or in a directory we may not write stays searchable.
        WAL mode needs its -shm file: SQLite opens read-only when -wal/-shm exist, else we
        open it immutable, which is exact because nobody can write without creating them."""
        last: sqlite3.Error | None = None
        for query in ("mode=ro", "immutable=1"):
            uri = f"file:{urllib.parse.quote(str(db.absolute()))}?{query}"
            con = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False, isolation_level=None)
            try:
                con.execute("SELECT COUNT(*) FROM images").fetchone()
                return con
            except sqlite3.Error as e:
                con.close()
                last = e
        raise last  # type: ignore[misc]

    def _ensure_log(self) -> str | None:
        """Create the change log on libraries made before it existed; its id (in meta) ties an
        index to this database. None when the library is read-only: exact search only."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'vector_log_id'").fetchone()
        if row is not None:
            return str(row[0])
        if self.write_refusal is not None:
            return None
        try:
            log_id = uuid.uuid4().hex
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _LOG_SCHEMA.strip().split(";\n"):
                    self._db.execute(stmt)
                self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('vector_log_id', ?)", (log_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as e:
            if "readonly" in str(e) or "read-only" in str(e):
                return None
            raise
        row = self._db.execute("SELECT value FROM meta WHERE key = 'vector_log_id'").fetchone()
        return str(row[0])

    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self_inner):
                store._db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                if exc_type is None:
                    store._db.execute("COMMIT")
                elif store._db.in_transaction:
                    # SQLite may already have rolled back (e.g. disk full); a failing ROLLBACK
                    # must not replace the error that explains what happened.
                    with contextlib.suppress(sqlite3.Error):
                        store._db.execute("ROLLBACK")
                return False

        return _Tx()

    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as e:
                raise _as_user_error(e, self.directory) from None

    # -- meta -----------------------------------------------------------------------------
    def get_meta(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM meta"))

    def set_meta(self, values: dict[str, str]) -> None:
        if self.write_refusal is not None:
            raise self.write_refusal
        with self._lock:
            try:
                with self._tx():
                    self._db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                         [(k, str(v)) for k, v in values.items()])
            except sqlite3.DatabaseError as e:
                raise _as_user_error(e, self.directory) from None

    # -- records --------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM images")[0][0])

    def get(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        out: dict[int, ImageRecord] = {}
        ids = [int(i) for i in ids]
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"SELECT {_COLUMNS} FROM images WHERE id IN ({marks})", chunk):
                rec = _record(row)
                out[rec.id] = rec  # type: ignore[index]
        return out

    def find_path(self, path: str) -> ImageRecord | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM images WHERE path = ?", (_path_param(path),))
        return _record(rows[0]) if rows else None

    def find_sha(self, sha256: str) -> list[ImageRecord]:
        rows = self._query(f"SELECT {_COLUMNS} FROM images WHERE sha256 = ? ORDER BY id", (sha256,))
        return [_record(r) for r in rows]

    def hashes(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for sha, id_ in self._query("SELECT sha256, id FROM images ORDER BY id"):
            out.setdefault(sha, []).append(int(id_))
        return out

    def iter_records(self, offset: int = 0, limit: int | None = None,
                     where: SearchFilter | None = None) -> Iterator[ImageRecord]:
        clause, params = _where_sql(where)
        sql = f"SELECT {_COLUMNS} FROM images {clause} ORDER BY id LIMIT ? OFFSET ?"
        rows = self._query(sql, (*params, -1 if limit is None else int(limit), int(offset)))
        return iter([_record(r) for r in rows])

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        found: dict[int, bytes] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            found.update(self._query(f"SELECT id, vector FROM images WHERE id IN ({marks})", chunk))
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no image with id {missing[0]}")
        if not ids:
            return np.zeros((0, int(self.get_meta().get("dim", 0))), dtype=np.float32)
        return np.stack([np.frombuffer(found[i], dtype=np.float32) for i in ids])

    def write(self, upserts: Sequence[Upsert] = (), removes: Sequence[int] = ()) -> list[int]:
        """See `VectorStore.write`; an id of -1 marks an upsert without a vector whose record
        another process removed meanwhile (nothing to update)."""
        if self.write_refusal is not None and (upserts or removes):
            raise self.write_refusal
        ids: list[int] = []
        now = time.time()
        with self._lock:
            try:
                with self._tx():
                    if removes:
                        self._db.executemany("DELETE FROM images WHERE id = ?", [(int(i),) for i in removes])
                    for up in upserts:
                        ids.append(self._upsert(up, now))
            except sqlite3.DatabaseError as e:
                raise _as_user_error(e, self.directory) from None
            self._local_writes += 1
        return ids

    def _upsert(self, up: Upsert, now: float) -> int:
        r = up.record
        values = (_path_param(r.path), r.sha256, int(r.size), float(r.mtime), int(r.width), int(r.height),
                  json.dumps(r.tags), r.added or now)
        # Another process may have written the same path since our caller read the library
        # (two indexers, or a server taking uploads): one path keeps one record, last write wins.
        if r.id is not None:
            self._db.execute("DELETE FROM images WHERE path = ? AND id != ?", (values[0], r.id))
            sets = "path=?, sha256=?, size=?, mtime=?, width=?, height=?, tags=?, added=?"
            if up.vector is not None:
                cur = self._db.execute(f"UPDATE images SET {sets}, vector=? WHERE id=?", (*values, _blob(up.vector), r.id))
            else:
                cur = self._db.execute(f"UPDATE images SET {sets} WHERE id=?", (*values, r.id))
            if cur.rowcount:
                return int(r.id)
            if up.vector is None:  # removed meanwhile, and no vector to recreate it: skip
                return -1
        elif up.vector is None:
            raise ValueError("a new record needs a vector")
        # A new record (id None: SQLite assigns one), or an explicit id not stored yet (migrate
        # keeps ids; a record removed meanwhile comes back under its own id).
        row = self._db.execute(
            "INSERT INTO images (id, path, sha256, size, mtime, width, height, tags, added, vector)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " sha256=excluded.sha256, size=excluded.size, mtime=excluded.mtime, width=excluded.width,"
            " height=excluded.height, tags=excluded.tags, vector=excluded.vector RETURNING id",
            (None if r.id is None else int(r.id), *values, _blob(up.vector))).fetchone()
        return int(row[0])

    # -- search ---------------------------------------------------------------------------
    def _snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """The id array and vector matrix, reloaded only when the database changed."""
        with self._lock:
            version = (self._query("PRAGMA data_version")[0][0], self._local_writes)
            if self._matrix is None or version != self._seen_version:
                rows = self._query("SELECT id, vector FROM images ORDER BY id")
                dim = int(self.get_meta().get("dim", 0))
                self._ids = np.array([r[0] for r in rows], dtype=np.int64)
                self._matrix = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
                                .reshape(len(rows), dim) if rows else np.zeros((0, dim), np.float32))
                self._seen_version = version
            return self._ids, self._matrix  # type: ignore[return-value]

    def search(self, queries: np.ndarray, k: int, where: SearchFilter | None = None,
               exclude: Sequence[int] = (), ef: int | None = None) -> list[ScoredIds]:
        """Exact below `ann_threshold` images; above, the ANN index with `ef` candidates per
        query (default `ann_params.ef`; higher: better recall, slower), re-ranked exactly."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        with self._lock:
            ann = self._ann_in_step()
            if ann is not None:
                if k <= 0:
                    return [[] for _ in queries]
                allowed = None
                if where is not None and not where.is_empty():
                    clause, params = _where_sql(where)
                    allowed = np.array([r[0] for r in self._query(f"SELECT id FROM images {clause}", params)], np.int64)
                blocked = np.asarray(list(exclude), np.int64) if len(exclude) else None
                return ann.search(queries, k, int(ef or self.ann_params.ef), blocked, allowed)
        return self._exact_search(queries, k, where, exclude)

    # -- ANN index ------------------------------------------------------------------------
    def _log_seq(self) -> int | None:
        if self._log_id is None:
            return None
        return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM vector_log").fetchone()[0])

    def _ann_in_step(self, progress: BuildProgress | None = None) -> AnnIndex | None:
        """The ANN index brought up to the database's current state, or None when the
        library is small enough for exact search. Cheap when nothing changed (one lookup)."""
        seq = self._log_seq()
        if seq is None or seq == self._ann_checked_seq:
            return self._ann
        dim = int(self.get_meta().get("dim", 0))
        ann = self._ann
        if ann is None and dim:
            # A persisted index answers without counting a large table first.
            ann = AnnIndex.load(self.directory, dim, self._log_id)  # type: ignore[arg-type]
        if ann is None:
            if dim == 0 or self.count() < self.ann_threshold:
                self._ann_checked_seq = seq
                return None
        if ann is None or ann.manifest.covered_seq > seq or seq - ann.synced_seq > max(50_000, ann.manifest.n_labels):
            ann = self._build(dim, progress)  # missing, foreign, or too far behind to catch up
        ann.merge_min = self.ann_params.merge_min
        ann.catch_up(self._db, seq)
        if ann.needs_rebuild():
            ann = self._build(dim, progress)
            ann.catch_up(self._db, seq)
        elif ann.needs_merge() and not ann.merge():
            # Another process wrote a newer generation: use it.
            ann = AnnIndex.load(self.directory, dim, self._log_id) or self._build(dim, progress)  # type: ignore[arg-type]
            ann.catch_up(self._db, seq)
        if ann.live_count < self.ann_threshold:
            ann = None
        self._ann = ann
        self._ann_checked_seq = seq
        return ann

    def _build(self, dim: int, progress: BuildProgress | None) -> AnnIndex:
        return ann_index.build(self.directory, self.directory / DB_NAME, dim, self._log_id,  # type: ignore[arg-type]
                               self.ann_params, progress)

    def sync_index(self, progress: BuildProgress | None = None, persist: bool = False) -> bool:
        """Bring the ANN index up to date now (after indexing, so the first search is fast);
        with `persist`, also merge pending changes into the files. True when ANN is in use."""
        with self._lock:
            ann = self._ann_in_step(progress)
            if ann is not None and persist and not ann.merge():
                self._ann = self._ann_checked_seq = None
                ann = self._ann_in_step(progress)
            return ann is not None

    def rebuild_index(self, progress: BuildProgress | None = None) -> None:
        """Drop the persisted index and rebuild it (e.g. after changing `ann_params`)."""
        with self._lock:
            ann_index.remove_index(self.directory)
            self._ann = self._ann_checked_seq = None
            self._ann_in_step(progress)

    def _exact_search(self, queries: np.ndarray, k: int, where: SearchFilter | None,
                      exclude: Sequence[int]) -> list[ScoredIds]:
        ids, matrix = self._snapshot()
        if len(ids) == 0 or k <= 0:
            return [[] for _ in queries]
        allowed = np.ones(len(ids), dtype=bool)
        if where is not None and not where.is_empty():
            clause, params = _where_sql(where)
            keep = np.array([r[0] for r in self._query(f"SELECT id FROM images {clause}", params)], dtype=np.int64)
            allowed &= np.isin(ids, keep)
        if len(exclude):
            allowed &= ~np.isin(ids, np.asarray(list(exclude), dtype=np.int64))
        scores = queries @ matrix.T
        scores[:, ~allowed] = -np.inf
        n_ok = int(allowed.sum())
        k = min(k, n_ok)
        if k == 0:
            return [[] for _ in queries]
        out: list[ScoredIds] = []
        for row in scores:
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((ids[top], -row[top]))]  # score desc, then id for stable ties
            out.append([(int(ids[j]), float(row[j])) for j in top[:k]])
        return out

    # -- housekeeping ---------------------------------------------------------------------
    def size_bytes(self) -> int:
        db = sum(p.stat().st_size for p in self.directory.glob(DB_NAME + "*") if p.is_file())
        return db + ann_index.index_size_bytes(self.directory)

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass


def _record(row: tuple) -> ImageRecord:
    id_, path, sha, size, mtime, w, h, tags, added = row
    return ImageRecord(path=os.fsdecode(path), sha256=sha, size=size, mtime=mtime, width=w, height=h,
                       tags=[(t[0], t[1]) for t in json.loads(tags)], added=added, id=int(id_))


def _path_param(path: str) -> str | bytes:
    """A file name that is not valid UTF-8 (Python holds its odd bytes as surrogates) is
    stored as its raw bytes in a BLOB, so it round-trips exactly; all others as TEXT."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def _where_sql(where: SearchFilter | None) -> tuple[str, tuple]:
    if where is None or where.is_empty():
        return "", ()
    clauses: list[str] = []
    params: list = []
    if where.path_prefix:
        # Compared as bytes, so names stored as BLOBs (not UTF-8) are found too.
        prefix = os.fsencode(where.path_prefix)
        clauses.append("substr(CAST(path AS BLOB), 1, ?) = ?")
        params += [len(prefix), prefix]
    if where.labels is not None:
        marks = ",".join("?" * len(where.labels)) or "NULL"
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(images.tags) WHERE json_extract(value, '$[0]') IN ({marks}))")
        params += list(where.labels)
    if where.min_mtime is not None:
        clauses.append("mtime >= ?")
        params.append(where.min_mtime)
    if where.max_mtime is not None:
        clauses.append("mtime <= ?")
        params.append(where.max_mtime)
    return "WHERE " + " AND ".join(clauses), tuple(params)


def _nearly_full(directory: Path, margin: int = 1 << 20) -> bool:
    """SQLite reports running out of space while growing its -shm/-wal files as an I/O error."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < margin


def _read_only_error(directory: Path) -> LookalikeError:
    return LookalikeError(f"library {directory} is read-only (no write permission or a read-only disk): "
                          f"searching works, indexing and removing need write access")


def _chunks(items: list[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _as_user_error(e: sqlite3.DatabaseError, directory: Path) -> LookalikeError:
    msg = str(e).lower()
    if "locked" in msg or "busy" in msg:
        return LibraryBusyError(f"library {directory} is busy: another process is writing to it; try again")
    if "readonly" in msg or "read-only" in msg or (("unable to open" in msg) and not os.access(directory, os.W_OK)):
        return _read_only_error(directory)
    if "disk is full" in msg or "full" in msg or ("disk i/o error" in msg and _nearly_full(directory)):
        return LookalikeError(f"library {directory}: disk is full; nothing was lost: free some space and run the same command again")
    return LookalikeError(f"library {directory}: {e}")
