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

from ...config import ann_threshold as config_ann_threshold
from ...errors import LookalikeError
from ...filters import check_fields
from .. import ann_index
from ..ann_index import AnnIndex, AnnParams, BuildProgress
from ..base import ImageRecord, ScoredIds, SearchFilter, Upsert
from .schema import COLUMNS, DB_NAME, LOG_SCHEMA, SCHEMA, blob, chunks, missing_migrations, path_param, record, where_sql
from .search import exact_top_k
from .sqlite_errors import as_user_error, read_only_error

FILTER_CACHE = 8  # filters whose matching ids are kept (per store, until the next change)


class EmbeddedStore:
    def __init__(self, directory: str | Path, busy_timeout_s: float = 30.0, *,
                 ann_threshold: int | None = None, ann_params: AnnParams | None = None) -> None:
        """`ann_threshold`: image count from which searches use the ANN index (default
        $LOOKALIKE_ANN_THRESHOLD or 20,000); `ann_params`: its construction/search settings."""
        self.directory = Path(directory)
        self.ann_threshold = ann_threshold if ann_threshold is not None else config_ann_threshold()
        self.ann_params = ann_params or AnnParams.from_env()
        # Set when the library can only be read (read-only directory or disk, or a disk too
        # full to open it normally): searching works, writes raise this error.
        self._refusal: LookalikeError | None = None
        db = self.directory / DB_NAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if db.exists() and not os.access(self.directory, os.W_OK):
                self._db = self._open_read_only(db, busy_timeout_s)
                self._refusal = read_only_error(self.directory)
            else:
                self._db = self._open_read_write(db, busy_timeout_s)
        except sqlite3.DatabaseError as e:
            error = as_user_error(e, self.directory)
            if not (db.exists() and "disk is full" in str(error)):
                raise error from None
            try:  # SQLite cannot even create its -shm file: still let people search
                self._db = self._open_read_only(db, busy_timeout_s)
            except sqlite3.Error:
                raise error from None
            self._refusal = error
        except OSError as e:
            raise LookalikeError(f"cannot open library {self.directory}: {e.strerror or e}") from None
        try:
            self._log_id = self._ensure_log()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise as_user_error(e, self.directory) from None
        # A read-only library from before `fields` existed cannot be migrated: read it as empty.
        has_fields = any(r[1] == "fields" for r in self._db.execute("PRAGMA table_info(images)"))
        self._columns = COLUMNS if has_fields else COLUMNS.replace(", fields", ", '{}'")
        self._has_field_types = self._db.execute(
            "SELECT name FROM sqlite_master WHERE name='field_types'").fetchone() is not None
        self._filter_cache: dict[str, np.ndarray] = {}
        self._filter_version: tuple[int, int] | None = None
        self._lock = threading.RLock()
        self._matrix: np.ndarray | None = None
        self._ids: np.ndarray | None = None
        self._seen_version: tuple[int, int] | None = None
        self._local_writes = 0
        self._ann: AnnIndex | None = None
        self._ann_checked_seq: int | None = None  # log position the exact/ANN choice was made at

    # -- plumbing -------------------------------------------------------------------------
    @staticmethod
    def exists(directory: str | Path) -> bool:
        """Whether `directory` holds an embedded library (without creating one)."""
        return (Path(directory) / DB_NAME).exists()

    def write_refusal(self) -> LookalikeError | None:
        """Why writes would fail (read-only directory or disk, disk full), or None."""
        return self._refusal

    @staticmethod
    def _open_read_write(db: Path, timeout: float) -> sqlite3.Connection:
        con = sqlite3.connect(db, timeout=timeout, check_same_thread=False, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            if con.execute("SELECT name FROM sqlite_master WHERE name='images'").fetchone() is None:
                con.executescript(SCHEMA)  # idempotent: IF NOT EXISTS throughout
            elif missing_migrations(con):
                con.execute("BEGIN IMMEDIATE")  # another process may be migrating too: re-check inside
                try:
                    for stmt in missing_migrations(con):
                        con.execute(stmt)
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
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
        assert last is not None  # the loop runs at least once
        raise last

    def _ensure_log(self) -> str | None:
        """Create the change log on libraries made before it existed; its id (in meta) ties an
        index to this database. None when the library is read-only: exact search only."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'vector_log_id'").fetchone()
        if row is not None:
            return str(row[0])
        if self._refusal is not None:
            return None
        try:
            log_id = uuid.uuid4().hex
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in LOG_SCHEMA.strip().split(";\n"):
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
                raise as_user_error(e, self.directory) from None

    # -- meta -----------------------------------------------------------------------------
    def get_meta(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM meta"))

    def set_meta(self, values: dict[str, str]) -> None:
        if self._refusal is not None:
            raise self._refusal
        with self._lock:
            try:
                with self._tx():
                    self._db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                         [(k, str(v)) for k, v in values.items()])
            except sqlite3.DatabaseError as e:
                raise as_user_error(e, self.directory) from None

    # -- records --------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM images")[0][0])

    def get(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        out: dict[int, ImageRecord] = {}
        ids = [int(i) for i in ids]
        for chunk in chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"SELECT {self._columns} FROM images WHERE id IN ({marks})", chunk):
                rec = record(row)
                out[rec.stored_id] = rec
        return out

    def find_path(self, path: str) -> ImageRecord | None:
        rows = self._query(f"SELECT {self._columns} FROM images WHERE path = ?", (path_param(path),))
        return record(rows[0]) if rows else None

    def find_sha(self, sha256: str) -> list[ImageRecord]:
        rows = self._query(f"SELECT {self._columns} FROM images WHERE sha256 = ? ORDER BY id", (sha256,))
        return [record(r) for r in rows]

    def hashes(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for sha, id_ in self._query("SELECT sha256, id FROM images ORDER BY id"):
            out.setdefault(sha, []).append(int(id_))
        return out

    def field_types(self) -> dict[str, set[str]]:
        """Every field name ever written, with the types its values had (never shrinks)."""
        out: dict[str, set[str]] = {}
        if self._has_field_types:
            for name, kind in self._query("SELECT name, type FROM field_types"):
                out.setdefault(name, set()).add(kind)
        return out

    def iter_records(self, offset: int = 0, limit: int | None = None,
                     where: SearchFilter | None = None) -> Iterator[ImageRecord]:
        clause, params = where_sql(where)
        sql = f"SELECT {self._columns} FROM images {clause} ORDER BY id LIMIT ? OFFSET ?"
        rows = self._query(sql, (*params, -1 if limit is None else int(limit), int(offset)))
        return iter([record(r) for r in rows])

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        found: dict[int, bytes] = {}
        for chunk in chunks(ids, 500):
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
        if self._refusal is not None and (upserts or removes):
            raise self._refusal
        ids: list[int] = []
        now = time.time()
        # Validated before the transaction: a bad value names its file and field, nothing is written.
        types = {(name, kind) for up in upserts for name, kind in check_fields(up.record.fields, up.record.path).items()}
        with self._lock:
            try:
                with self._tx():
                    if removes:
                        self._db.executemany("DELETE FROM images WHERE id = ?", [(int(i),) for i in removes])
                    for up in upserts:
                        ids.append(self._upsert(up, now))
                    if types:
                        self._db.executemany("INSERT OR IGNORE INTO field_types (name, type) VALUES (?, ?)", sorted(types))
            except sqlite3.DatabaseError as e:
                raise as_user_error(e, self.directory) from None
            self._local_writes += 1
        return ids

    def _upsert(self, up: Upsert, now: float) -> int:
        r = up.record
        values = (path_param(r.path), r.sha256, int(r.size), float(r.mtime), int(r.width), int(r.height),
                  json.dumps(r.tags), r.added or now, json.dumps(r.fields))
        # Another process may have written the same path since our caller read the library
        # (two indexers, or a server taking uploads): one path keeps one record, last write wins.
        if r.id is not None:
            self._db.execute("DELETE FROM images WHERE path = ? AND id != ?", (values[0], r.id))
            sets = "path=?, sha256=?, size=?, mtime=?, width=?, height=?, tags=?, added=?, fields=?"
            if up.vector is not None:
                cur = self._db.execute(f"UPDATE images SET {sets}, vector=? WHERE id=?", (*values, blob(up.vector), r.id))
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
            "INSERT INTO images (id, path, sha256, size, mtime, width, height, tags, added, fields, vector)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " sha256=excluded.sha256, size=excluded.size, mtime=excluded.mtime, width=excluded.width,"
            " height=excluded.height, tags=excluded.tags, fields=excluded.fields, vector=excluded.vector RETURNING id",
            (None if r.id is None else int(r.id), *values, blob(up.vector))).fetchone()
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
            assert self._ids is not None and self._matrix is not None  # loaded above
            return self._ids, self._matrix

    def search(self, queries: np.ndarray, k: int, where: SearchFilter | None = None,
               exclude: Sequence[int] = (), ef: int | None = None) -> list[ScoredIds]:
        """Exact below `ann_threshold` images; above, the ANN index with `ef` candidates per
        query (default `ann_params.ef`; higher: better recall, slower), re-ranked exactly.
        A filter is applied *before* ranking (an allow-list), so a filtered search returns k
        hits whenever k images match."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        with self._lock:
            ann = self._ann_in_step()
            if ann is not None:
                if k <= 0:
                    return [[] for _ in queries]
                allowed = self._matching_ids(where)
                blocked = np.asarray(list(exclude), np.int64) if len(exclude) else None
                results = ann.search(queries, k, int(ef or self.ann_params.ef), blocked, allowed)
                if allowed is None or all(len(r) >= k for r in results):
                    return results
                # A graph walk restricted to a filter can strand itself before finding k of the
                # allowed images: when short, rank the allowed images exactly instead.
                wanted = allowed if blocked is None else allowed[~np.isin(allowed, blocked)]
                if all(len(r) >= min(k, len(wanted)) for r in results):
                    return results
                return exact_top_k(wanted, self.vectors(wanted.tolist()), queries, k, np.ones(len(wanted), bool))
        return self._exact_search(queries, k, where, exclude)

    def _matching_ids(self, where: SearchFilter | None) -> np.ndarray | None:
        """Ids the filter allows (sorted), or None when there is no filter. A filter reads
        every image's fields JSON, so the last few answers are kept until the database
        changes: paging through results or a search per query image pays it once."""
        if where is None or where.is_empty():
            return None
        with self._lock:
            version = (self._query("PRAGMA data_version")[0][0], self._local_writes)
            key = repr(where)  # dataclasses of plain values and frozen AST nodes: a faithful key
            if self._filter_version != version:
                self._filter_cache.clear()
                self._filter_version = version
            ids = self._filter_cache.pop(key, None)
            if ids is None:
                clause, params = where_sql(where)
                ids = np.array([r[0] for r in self._query(f"SELECT id FROM images {clause} ORDER BY id", params)], np.int64)
            self._filter_cache[key] = ids  # most recent last
            while len(self._filter_cache) > FILTER_CACHE:
                self._filter_cache.pop(next(iter(self._filter_cache)))
            return ids

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
            ann = AnnIndex.load(self.directory, dim, self._log_id)  # type: ignore[arg-type]  # set: _log_seq() was not None
        if ann is None:
            if dim == 0 or self.count() < self.ann_threshold:
                self._ann_checked_seq = seq
                return None
        if ann is None or ann.manifest.covered_seq > seq or seq - ann.synced_seq > max(50_000, ann.manifest.n_labels):
            ann = self._build(dim, progress)  # missing, foreign, or too far behind to catch up
        ann.merge_min = self.ann_params.merge_min
        ann.rerank = self.ann_params.rerank
        ann.catch_up(self._db, seq)
        if ann.needs_rebuild():
            ann = self._build(dim, progress)
            ann.catch_up(self._db, seq)
        elif ann.needs_merge() and not ann.merge():
            # Another process wrote a newer generation: use it.
            ann = AnnIndex.load(self.directory, dim, self._log_id) or self._build(dim, progress)  # type: ignore[arg-type]  # set: _log_seq() was not None
            ann.catch_up(self._db, seq)
        if ann.live_count < self.ann_threshold:
            ann = None
        self._ann = ann
        self._ann_checked_seq = seq
        return ann

    def _build(self, dim: int, progress: BuildProgress | None) -> AnnIndex:
        return ann_index.build(self.directory, self.directory / DB_NAME, dim, self._log_id,  # type: ignore[arg-type]  # only called with a change log
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
        keep = self._matching_ids(where)
        if keep is not None:
            allowed &= np.isin(ids, keep)
        if len(exclude):
            allowed &= ~np.isin(ids, np.asarray(list(exclude), dtype=np.int64))
        return exact_top_k(ids, matrix, queries, k, allowed)

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
