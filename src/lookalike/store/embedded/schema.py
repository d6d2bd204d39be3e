"""The SQLite schema of the embedded store, its migrations, and rows <-> records."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Iterator

import numpy as np

from ...filters import to_sql
from ..base import ImageRecord, SearchFilter

DB_NAME = "library.sqlite"

SCHEMA = """
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
    vector BLOB NOT NULL,
    fields TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
CREATE TABLE IF NOT EXISTS field_types (name TEXT NOT NULL, type TEXT NOT NULL, PRIMARY KEY (name, type));
"""

# Every vector change, in commit order, written by SQLite itself in the writer's transaction:
# the ANN index records the last seq it covers and catches up from here (any process, any
# code version that writes through SQL).
LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS vector_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS vector_log_insert AFTER INSERT ON images
    BEGIN INSERT INTO vector_log (id) VALUES (NEW.id); END;
CREATE TRIGGER IF NOT EXISTS vector_log_update AFTER UPDATE OF vector, id ON images
    BEGIN INSERT INTO vector_log (id) VALUES (OLD.id); INSERT INTO vector_log (id) VALUES (NEW.id); END;
CREATE TRIGGER IF NOT EXISTS vector_log_delete AFTER DELETE ON images
    BEGIN INSERT INTO vector_log (id) VALUES (OLD.id); END;
"""

COLUMNS = "id, path, sha256, size, mtime, width, height, tags, added, fields"


def missing_migrations(con: sqlite3.Connection) -> list[str]:
    """Statements that bring a library made by an older version up to this schema (none when
    current). Each is idempotent in effect: run only when its column/table is absent."""
    columns = {row[1] for row in con.execute("PRAGMA table_info(images)")}
    todo = []
    if "fields" not in columns:
        todo.append("ALTER TABLE images ADD COLUMN fields TEXT NOT NULL DEFAULT '{}'")
    if con.execute("SELECT name FROM sqlite_master WHERE name='field_types'").fetchone() is None:
        todo.append("CREATE TABLE IF NOT EXISTS field_types (name TEXT NOT NULL, type TEXT NOT NULL, PRIMARY KEY (name, type))")
    return todo


def record(row: tuple) -> ImageRecord:
    id_, path, sha, size, mtime, w, h, tags, added, fields = row
    return ImageRecord(path=os.fsdecode(path), sha256=sha, size=size, mtime=mtime, width=w, height=h,
                       tags=[(t[0], t[1]) for t in json.loads(tags)], added=added, id=int(id_),
                       fields=json.loads(fields) if fields else {})


def path_param(path: str) -> str | bytes:
    """A file name that is not valid UTF-8 (Python holds its odd bytes as surrogates) is
    stored as its raw bytes in a BLOB, so it round-trips exactly; all others as TEXT."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def where_sql(where: SearchFilter | None) -> tuple[str, tuple]:
    """A SearchFilter as a WHERE clause and its bound parameters ("" when it is empty)."""
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
    if where.expr is not None:
        sql, expr_params = to_sql(where.expr, "images.fields")
        clauses.append(sql)
        params += expr_params
    return "WHERE " + " AND ".join(clauses), tuple(params)


def chunks(items: list[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
