"""A store on Milvus (`pymilvus.MilvusClient`): Milvus Lite in a local `.db` directory, or a
Milvus server/cluster at an http(s) URI. Same protocol as the embedded store.

One library = two collections: `<name>` holds a row per image (INT64 id we allocate, the
vector and every record field, so a record never exists without its vector) and
`<name>_meta` holds the library settings (model, dim, created) plus the id counter.
Milvus has no multi-row transactions: a write applies removes, then upserts, in batches;
an interrupted write leaves whole rows, and the indexer completes the rest on its next run.
One writer per library at a time (the id counter is read-modify-write).

Reads use Session consistency (a process sees its own writes at once; Strong costs ~200 ms a
read on a 2.3 server), and each collection's first read in a process is Strong, so opening a
library sees everything written before. `?consistency=Strong` makes every read Strong."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..config import milvus_token as config_milvus_token
from ..errors import Conflict, LookalikeError
from ..filters import FieldTypes, check_fields, matches, to_milvus
from .base import ImageRecord, ScoredIds, SearchFilter, Upsert

DEFAULT_COLLECTION = "lookalike"
NEXT_ID = "_next_id"  # meta key of the id counter; keys starting with "_" are internal
FIELD_TYPES = "_field_types"  # meta key: JSON {field name: [types]} of every field written
MAX_PATH = 4096
MAX_TAGS_JSON = 8192
MAX_LABELS = 64
MAX_TOPK = 16384  # Milvus' limit on search limit and query offset+limit
ROWS_PER_REQUEST = 1000  # keeps gRPC messages far below the 64 MB cap at 1280-d float32

# Index types each target actually runs. Lite 3.2.2 accepts IVF_PQ, DISKANN and SCANN at
# creation and then fails at flush/load, leaving a collection that never loads again.
LITE_INDEXES = ("HNSW", "FLAT", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX")
SERVER_INDEXES = ("HNSW", "FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN", "SCANN", "AUTOINDEX")
_BUILD_PARAMS: dict[str, dict] = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "HNSW_SQ": {"M": 16, "efConstruction": 200, "sq_type": "SQ8"},
    "IVF_FLAT": {"nlist": 1024},
    "IVF_SQ8": {"nlist": 1024},
    "IVF_PQ": {"nlist": 1024, "m": 32, "nbits": 8},
    "SCANN": {"nlist": 1024},
}
LITE_FLUSH_ROWS = 256
INDEX_WAIT_S = 600  # sync_index on a server: the longest wait for the index to be built and loaded
INDEX_POLL_S = 1.0
SETTLED_POLLS = 5
MIN_INDEXED_ROWS = 1024  # a 2.3 server's minSegmentNumRowsToEnableIndex: smaller segments are searched exactly
LITE_WRITE_FLUSH_ROWS = 10_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
_FIELDS = ["id", "path", "sha256", "size", "mtime", "width", "height", "tags", "added"]  # + "fields" when present

CONSISTENCY = ("Session", "Strong", "Bounded", "Eventually")


def is_local(uri: str) -> bool:
    return not re.match(r"^(https?|tcp|grpc|unix)://", uri)


def parse_spec(spec: str) -> dict[str, Any]:
    """`milvus:URI[#collection][?index=HNSW]` -> MilvusStore keyword arguments.
    URI is a Milvus Lite `.db` path or a server's http(s)://host:port."""
    rest = spec.split(":", 1)[1] if spec.startswith("milvus:") else spec
    options: dict[str, Any] = {}
    if "?" in rest:
        rest, query = rest.split("?", 1)
        for part in filter(None, query.split("&")):
            key, _, value = part.partition("=")
            if key not in ("index", "timeout", "consistency"):
                raise LookalikeError(f"unknown option {key!r} in store {spec!r} (known: index, timeout, consistency)")
            options[key] = float(value) if key == "timeout" else value
    uri, _, collection = rest.partition("#")
    if not uri:
        raise LookalikeError(f"store {spec!r} has no URI: use milvus:./lib.db or milvus:http://host:19530")
    return {"uri": uri, "collection": collection or DEFAULT_COLLECTION, **options}


def _literal(text: str) -> str:
    """A string literal for a Milvus filter expression."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusStore:
    def __init__(self, uri: str, collection: str = DEFAULT_COLLECTION, token: str | None = None,
                 index: str = "HNSW", timeout: float = 30.0, consistency: str = "Session") -> None:
        if not _NAME.match(collection):
            raise LookalikeError(f"invalid Milvus collection name {collection!r}: letters, digits and _ only, not starting with a digit")
        self.local = is_local(uri)
        if self.local:
            if not uri.endswith(".db"):
                raise LookalikeError(f"a Milvus Lite library is a path ending in .db, not {uri!r} (or use http://host:19530)")
            uri = str(Path(uri).expanduser().absolute())
        self.uri = uri
        self.collection = collection
        self.meta_collection = collection + "_meta"
        self.index = index.upper()
        allowed = LITE_INDEXES if self.local else SERVER_INDEXES
        if self.index not in allowed:
            where = "Milvus Lite" if self.local else "a Milvus server"
            raise LookalikeError(f"index {index!r} does not run on {where}; choose one of {', '.join(allowed)}")
        self.timeout = timeout
        if consistency.capitalize() not in CONSISTENCY:
            raise LookalikeError(f"unknown Milvus consistency level {consistency!r}; choose one of {', '.join(CONSISTENCY)}")
        self.consistency = consistency.capitalize()
        self._synced: set[str] = set()
        self._client = self._connect(token if token is not None else (config_milvus_token() or ""))
        self._dim: int | None = None
        self._has_fields = True  # False on a collection created before `fields` existed
        self._meta_loaded = False
        self._unflushed = 0  # rows Lite holds in its slow unindexed path (searches ~0.5 ms per row)
        self._prefix_escapes = self._like_escapes()

    @classmethod
    def from_spec(cls, spec: str, token: str | None = None) -> MilvusStore:
        return cls(token=token, **parse_spec(spec))

    def __repr__(self) -> str:
        return f"MilvusStore({self.uri}#{self.collection})"

    # -- plumbing -------------------------------------------------------------------------
    def _connect(self, token: str):
        from pymilvus import MilvusClient

        # pymilvus logs every failed RPC with a traceback (its logging is set up on import);
        # our errors are one line each.
        for name in ("pymilvus", "milvus_lite"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            return MilvusClient(uri=self.uri, token=token, timeout=self.timeout)
        except Exception as e:  # noqa: BLE001 - pymilvus and milvus_lite raise many types
            if type(e).__name__ == "DataDirLockedError" or "Open local milvus failed" in str(e) or "holds the lock" in str(e):
                raise LookalikeError(
                    f"Milvus Lite library {self.uri} is open in another process; Milvus Lite allows one process per "
                    f"file: serve it with `milvus-lite server --data-dir {self.uri} --host 127.0.0.1 --port 19530` "
                    f"and use --store milvus:http://127.0.0.1:19530") from None
            raise LookalikeError(f"cannot reach Milvus at {self.uri}: {_message(e)} (is the server running?)") from None

    def _call(self, fn: Callable, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LookalikeError:
            raise
        except Exception as e:  # noqa: BLE001
            if type(e).__module__.startswith(("pymilvus", "grpc", "milvus_lite")):
                raise LookalikeError(f"Milvus at {self.uri} ({self.collection}): {_message(e)}") from None
            raise

    def _level(self, name: str) -> str:
        """Strong for a collection's first read in this process, then the configured level."""
        if name in self._synced:
            return self.consistency
        self._synced.add(name)
        return "Strong"

    def _has(self, name: str) -> bool:
        return bool(self._call(self._client.has_collection, name))

    def _like_escapes(self) -> bool:
        """Whether LIKE treats `_` as a wildcard that `\\_` escapes (Milvus >= 2.4) or only does
        literal prefix matching (Milvus 2.3 servers). Lite 3.2.2 does escape, but an escaped
        LIKE combined with any other clause matches nothing, so Lite gets no escapes."""
        if self.local:
            return False
        version = str(self._call(self._client.get_server_version))
        return not re.match(r"^v?2\.[0-3]\.", version)

    def _ensure_meta(self) -> None:
        if self._has(self.meta_collection):
            return
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("value", DataType.VARCHAR, max_length=65535)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus requires a vector field
        params = self._client.prepare_index_params()
        params.add_index("v", index_type="FLAT", metric_type="L2")
        self._call(self._client.create_collection, self.meta_collection, schema=schema,
                   index_params=params, consistency_level=self.consistency)

    def _ensure_data(self, dim: int) -> None:
        if self._dim is not None or self._has(self.collection):
            self._open_data()
            return
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
        schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
        schema.add_field("sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("size", DataType.INT64)
        schema.add_field("mtime", DataType.DOUBLE)
        schema.add_field("width", DataType.INT64)
        schema.add_field("height", DataType.INT64)
        schema.add_field("tags", DataType.VARCHAR, max_length=MAX_TAGS_JSON)  # JSON [[label, p], ...], exact
        schema.add_field("labels", DataType.ARRAY, element_type=DataType.VARCHAR,
                         max_capacity=MAX_LABELS, max_length=256)  # the tag labels, for filtering
        schema.add_field("added", DataType.DOUBLE)
        schema.add_field("fields", DataType.JSON)  # ImageRecord.fields; `where` filters compile to it
        params = self._client.prepare_index_params()
        params.add_index("vector", index_type=self.index, metric_type="COSINE", params=_BUILD_PARAMS.get(self.index, {}))
        self._call(self._client.create_collection, self.collection, schema=schema,
                   index_params=params, consistency_level=self.consistency)
        self._open_data()

    def _open_data(self) -> bool:
        """Load the data collection once per process; False when it does not exist yet."""
        if self._dim is not None:
            return True
        if not self._has(self.collection):
            return False
        desc = self._call(self._client.describe_collection, self.collection)
        vector = next(f for f in desc["fields"] if f["name"] == "vector")
        self._has_fields = any(f["name"] == "fields" for f in desc["fields"])
        self._dim = int(vector["params"]["dim"])
        indexes = self._call(self._client.list_indexes, self.collection)
        if indexes:
            info = self._call(self._client.describe_index, self.collection, indexes[0])
            self.index = str(info.get("index_type", self.index)).upper()
        self._call(self._client.load_collection, self.collection)
        return True

    def _query_all(self, name: str, filter: str, fields: list[str]) -> list[dict]:
        """Every matching row: one request when they fit, else paged by the query iterator."""
        level = self._level(name)
        rows: list[dict] = self._call(self._client.query, name, filter=filter or "id >= 0", output_fields=fields,
                                      limit=MAX_TOPK, consistency_level=level)
        if len(rows) < MAX_TOPK:
            return rows
        rows = []
        it = self._call(self._client.query_iterator, name, batch_size=ROWS_PER_REQUEST * 4,
                        filter=filter or "id >= 0", output_fields=fields, consistency_level=level)
        try:
            while batch := self._call(it.next):
                rows.extend(batch)
        finally:
            it.close()
        return rows

    def _by_ids(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict]:
        out: dict[int, dict] = {}
        if not ids or not self._open_data():
            return out
        unique = list(dict.fromkeys(int(i) for i in ids))
        for i in range(0, len(unique), ROWS_PER_REQUEST):
            for row in self._call(self._client.query, self.collection, ids=unique[i:i + ROWS_PER_REQUEST],
                                  output_fields=fields, consistency_level=self._level(self.collection)):
                out[int(row["id"])] = row
        return out

    # -- meta -----------------------------------------------------------------------------
    def _meta_rows(self) -> dict[str, str]:
        if not self._has(self.meta_collection):
            return {}
        if not self._meta_loaded:  # Lite releases collections when a process ends
            self._call(self._client.load_collection, self.meta_collection)
            self._meta_loaded = True
        rows = self._call(self._client.query, self.meta_collection, filter='key != ""', output_fields=["key", "value"],
                          consistency_level=self._level(self.meta_collection))
        return {r["key"]: r["value"] for r in rows}

    @staticmethod
    def exists(location: str) -> bool:
        """Unknown without connecting: opening the store tells (an empty collection has no meta)."""
        return True

    def write_refusal(self) -> LookalikeError | None:
        return None  # Milvus reports its own write errors when they happen

    def sync_index(self, progress: Callable[[int, int], None] | None = None) -> bool:
        """A server: seal what was written and wait (at most INDEX_WAIT_S) until its query node
        searches every row through the built index. Until then a 2.3 server answers from an
        "interim index" (IVF, nlist 128, nprobe 16 whatever ef is asked for): on features with
        close neighbours recall@10 was 0.60-0.64, 0.80-0.995 once the HNSW index was loaded
        (docs/milvus.md). Lite indexes on flush by itself. True when the index covers every row."""
        if self.local or not self._open_data():
            return False
        if self._unflushed:
            self.flush()
        deadline = time.monotonic() + INDEX_WAIT_S
        settled = 0  # polls in a row where the query node's segments were all searched through an index
        while True:
            indexed, loaded, total = self._index_state()
            if progress is not None:
                progress(min(indexed, total), total)
            settled = settled + 1 if indexed == loaded > 0 else 0
            # Done when the query node covers every stored row; or, should the two counts never
            # agree (deleted rows counted differently), when every segment it lists has settled.
            if indexed >= total or settled >= SETTLED_POLLS:
                return True
            if time.monotonic() > deadline:
                logging.getLogger(__name__).warning(
                    "Milvus at %s: %d of %d rows are searched through the index after %d s; the rest are "
                    "answered by the server's interim index (lower recall) until it finishes",
                    self.uri, indexed, total, INDEX_WAIT_S)
                return False
            time.sleep(INDEX_POLL_S)

    def index_progress(self) -> tuple[int, int]:
        """(rows searched through the built index or exactly, rows stored) on a server."""
        indexed, _, total = self._index_state()
        return indexed, total

    def _index_state(self) -> tuple[int, int, int]:
        """(rows the query node searches through the built index or exactly, rows it has
        loaded, rows stored). A segment counts once its index is loaded, or when it is too small
        to be indexed (searched exhaustively); a large growing one never does (a flush seals it)."""
        if self.local or not self._open_data():
            return 0, 0, 0
        total = int(self._call(self._client.get_collection_stats, self.collection).get("row_count", 0))
        infos = self._call(self._client._get_connection().get_query_segment_info, self.collection)
        loaded = sum(int(i.num_rows) for i in infos)
        indexed = sum(int(i.num_rows) for i in infos if i.index_name or int(i.num_rows) < MIN_INDEXED_ROWS)
        return indexed, loaded, total

    def field_types(self) -> FieldTypes:
        # Read each time (one small query): another process may have added fields.
        raw = json.loads(self._meta_rows().get(FIELD_TYPES, "{}"))
        return {name: set(kinds) for name, kinds in raw.items()}

    def _learn_types(self, upserts: Sequence[Upsert]) -> None:
        """Record new field names/types in meta before the rows that carry them."""
        known = self.field_types()
        changed = False
        for up in upserts:
            for name, kind in check_fields(up.record.fields, up.record.path).items():
                if kind not in known.setdefault(name, set()):
                    known[name].add(kind)
                    changed = True
        if changed:
            self._ensure_meta()
            value = json.dumps({name: sorted(kinds) for name, kinds in sorted(known.items())})
            self._call(self._client.upsert, self.meta_collection, [{"key": FIELD_TYPES, "value": value, "v": [1.0, 0.0]}])

    def _old_collection(self) -> LookalikeError:
        return Conflict(
            f"Milvus collection {self.collection!r} at {self.uri} was created before Lookalike stored per-image "
            f"fields: copy it into a new collection (lookalike migrate --from milvus:{self.uri}#{self.collection} "
            f"--to milvus:{self.uri}#NEW_NAME) and use that")

    def _output(self) -> list[str]:
        return [*_FIELDS, "fields"] if self._has_fields else _FIELDS

    def get_meta(self) -> dict[str, str]:
        return {k: v for k, v in self._meta_rows().items() if not k.startswith("_")}

    def set_meta(self, values: dict[str, str]) -> None:
        self._ensure_meta()
        rows = [{"key": str(k), "value": str(v), "v": [1.0, 0.0]} for k, v in values.items()]
        if rows:
            self._call(self._client.upsert, self.meta_collection, rows)
        if "dim" in values:
            self._ensure_data(int(values["dim"]))

    def _next_id(self) -> int:
        return int(self._meta_rows().get(NEXT_ID, "1"))

    def _reserve(self, next_id: int) -> None:
        """Persist the counter *before* rows use the ids, so a crash never hands one out twice."""
        self._ensure_meta()
        self._call(self._client.upsert, self.meta_collection, [{"key": NEXT_ID, "value": str(next_id), "v": [1.0, 0.0]}])

    # -- records --------------------------------------------------------------------------
    def count(self) -> int:
        if not self._open_data():
            return 0
        # Strong: under Session, a 2.3 server's count(*) misses this client's own recent deletes.
        rows = self._call(self._client.query, self.collection, filter="", output_fields=["count(*)"],
                          consistency_level="Strong")
        return int(rows[0]["count(*)"])

    def get(self, ids: Sequence[int]) -> dict[int, ImageRecord]:
        return {i: _record(row) for i, row in self._by_ids(ids, self._output()).items()}

    def _select(self, filter: str) -> list[ImageRecord]:
        if not self._open_data():
            return []
        rows = self._call(self._client.query, self.collection, filter=filter, output_fields=self._output(), limit=MAX_TOPK,
                          consistency_level=self._level(self.collection))
        return sorted((_record(r) for r in rows), key=lambda r: r.stored_id)

    def find_path(self, path: str) -> ImageRecord | None:
        found = self._select(f"path == {_literal(path)}")
        return found[0] if found else None

    def find_sha(self, sha256: str) -> list[ImageRecord]:
        return self._select(f"sha256 == {_literal(sha256)}")

    def hashes(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        if not self._open_data():
            return out
        for row in sorted(self._query_all(self.collection, "", ["id", "sha256"]), key=lambda r: r["id"]):
            out.setdefault(row["sha256"], []).append(int(row["id"]))
        return out

    def iter_records(self, offset: int = 0, limit: int | None = None,
                     where: SearchFilter | None = None) -> Iterator[ImageRecord]:
        if not self._open_data():
            return iter([])
        expr = where.expr if where is not None else None
        rows = self._query_all(self.collection, self._filter(where), ["id", "path", "fields"] if expr else ["id", "path"])
        ids = sorted(int(r["id"]) for r in rows if _path_ok(r["path"], where) and _expr_ok(r, expr))
        ids = ids[offset:] if limit is None else ids[offset:offset + max(0, int(limit))]
        return self._records_in_order(ids)

    def _records_in_order(self, ids: list[int]) -> Iterator[ImageRecord]:
        for i in range(0, len(ids), ROWS_PER_REQUEST):
            chunk = ids[i:i + ROWS_PER_REQUEST]
            found = self.get(chunk)
            yield from (found[j] for j in chunk if j in found)

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        if not ids:
            return np.zeros((0, self._dim or int(self.get_meta().get("dim", 0))), dtype=np.float32)
        found = self._by_ids(ids, ["id", "vector"])
        missing = [i for i in ids if i not in found]
        if missing:
            raise KeyError(f"no image with id {missing[0]}")
        return np.asarray([found[i]["vector"] for i in ids], dtype=np.float32)

    def write(self, upserts: Sequence[Upsert] = (), removes: Sequence[int] = ()) -> list[int]:
        now = time.time()
        if removes and self._open_data():
            for i in range(0, len(removes), ROWS_PER_REQUEST):
                self._call(self._client.delete, self.collection, ids=[int(x) for x in removes[i:i + ROWS_PER_REQUEST]])
        if not upserts:
            return []
        dim = next((len(u.vector) for u in upserts if u.vector is not None), None)
        if dim is not None:
            self._ensure_data(dim)
        if not self._has_fields and any(u.record.fields for u in upserts):
            raise self._old_collection()
        self._learn_types(upserts)
        # Ids: new records get fresh ones; explicit ids (replacements, migrate) are kept.
        fresh = sum(1 for u in upserts if u.record.id is None)
        explicit = [int(u.record.id) for u in upserts if u.record.id is not None]
        start = self._next_id()
        end = max([start + fresh, *(i + 1 for i in explicit)])
        if end != start:
            self._reserve(end)
        keep = self._by_ids([int(u.record.id) for u in upserts if u.record.id is not None and u.vector is None], ["id", "vector"])
        stored = set(keep) | set(self._by_ids([i for i in explicit if i not in keep], ["id"]))
        ids: list[int] = []
        rows: list[dict] = []
        new_rows: list[dict] = []  # ids not stored yet: a plain insert (an upsert first looks for the id)
        next_fresh = start
        for up in upserts:
            r = up.record
            if r.id is None:
                if up.vector is None:
                    raise ValueError("a new record needs a vector")
                id_, next_fresh = next_fresh, next_fresh + 1
            else:
                id_ = int(r.id)
            vector = up.vector if up.vector is not None else (keep[id_]["vector"] if id_ in keep else None)
            ids.append(id_)
            if vector is None:
                continue  # replacing a record that no longer exists: nothing to do, as in SQL UPDATE
            row = _row(id_, r, np.asarray(vector, dtype=np.float32), r.added or now)
            if not self._has_fields:
                del row["fields"]
            (rows if id_ in stored else new_rows).append(row)
        for batch, method in ((rows, self._client.upsert), (new_rows, self._client.insert)):
            for i in range(0, len(batch), ROWS_PER_REQUEST):
                self._call(method, self.collection, batch[i:i + ROWS_PER_REQUEST])
        self._unflushed += len(rows) + len(new_rows)
        if self.local and self._unflushed >= LITE_WRITE_FLUSH_ROWS:
            self.flush()  # keeps Lite's slow unindexed part small during large writes
        return ids

    def flush(self) -> None:
        """Seal written rows so they are indexed. On Lite, unflushed rows are searched slowly
        (2,000 of them cost ~1 s a query), so Lite flushes before a search that would pay more
        than a flush, and on close."""
        if self._unflushed and self._open_data():
            self._call(self._client.flush, self.collection)  # a server: seals growing segments for indexing
        self._unflushed = 0

    # -- search ---------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, where: SearchFilter | None = None,
               exclude: Sequence[int] = (), ef: int | None = None, **_ignored: Any) -> list[ScoredIds]:
        """Approximate top-k (HNSW with ef >= max(k, 64) is exact on small libraries).
        `ef` (or nprobe for IVF indexes) trades speed for recall; other options are ignored."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if k <= 0 or not self._open_data():
            return [[] for _ in queries]
        if self.local and self._unflushed >= LITE_FLUSH_ROWS:
            self.flush()
        clauses = [c for c in (self._filter(where),) if c]
        if len(exclude):
            clauses.append(f"id not in [{', '.join(str(int(i)) for i in exclude)}]")
        limit = min(int(k), MAX_TOPK)
        breadth = max(int(ef or 0), limit, 64)
        params = {"HNSW": {"ef": breadth}, "HNSW_SQ": {"ef": breadth}, "DISKANN": {"search_list": breadth}}.get(
            self.index, {"nprobe": max(32, int(ef or 0))} if self.index.startswith(("IVF", "SCANN")) else {})
        check_paths = bool(where and where.path_prefix)
        expr = where.expr if where is not None else None
        # Path prefixes and `where` expressions compile to coarse Milvus filters: re-checked here.
        output = ["path"] * check_paths + ["fields"] * (expr is not None)
        wanted = limit
        while True:
            results = self._call(self._client.search, self.collection, data=queries.tolist(), limit=limit,
                                 filter=" and ".join(clauses), output_fields=output,
                                 search_params={"metric_type": "COSINE", "params": params},
                                 consistency_level=self._level(self.collection))
            out: list[ScoredIds] = []
            for hits in results:
                scored = [(int(h["id"]), float(h["distance"])) for h in hits
                          if (not check_paths or _path_ok(h["entity"]["path"], where)) and _expr_ok(h["entity"], expr)]
                out.append(sorted(scored, key=lambda s: (-s[1], s[0]))[:wanted])  # score desc, then id, like the embedded store
            # A coarse filter may have let other images take places: fetch more until k remain.
            short = any(len(o) < wanted and len(h) == limit for o, h in zip(out, results))
            if not short or limit >= MAX_TOPK:
                return out
            limit = min(limit * 4, MAX_TOPK)

    def _filter(self, where: SearchFilter | None) -> str:
        """SearchFilter -> Milvus boolean expression (path prefixes are re-checked exactly in Python)."""
        if where is None or where.is_empty():
            return ""
        clauses: list[str] = []
        if where.path_prefix:
            clauses.append(self._prefix_clause(where.path_prefix))
        if where.labels is not None:
            if not where.labels:
                clauses.append("id < 0")  # any-of an empty list matches nothing
            else:
                clauses.append(f"array_contains_any(labels, [{', '.join(_literal(x) for x in where.labels)}])")
        if where.min_mtime is not None:
            clauses.append(f"mtime >= {float(where.min_mtime)!r}")
        if where.max_mtime is not None:
            clauses.append(f"mtime <= {float(where.max_mtime)!r}")
        if where.expr is not None:
            if not self._has_fields:
                raise self._old_collection()
            clauses.append(to_milvus(where.expr, "fields", self.field_types()))
        return " and ".join(f"({c})" for c in clauses)

    def _prefix_clause(self, prefix: str) -> str:
        if self._prefix_escapes:
            pattern = re.sub(r"([\\%_])", r"\\\1", prefix)
        else:  # match the part before the first wildcard character; results are re-checked in Python
            pattern = re.split(r"[%_\\]" if self.local else "%", prefix, maxsplit=1)[0]
        return f"path like {_literal(pattern + '%')}"

    # -- housekeeping ---------------------------------------------------------------------
    def size_bytes(self) -> int:
        """Lite: the .db directory on disk. Server: the vectors' raw size (a client cannot see
        the server's disk use)."""
        if self.local:
            root = Path(self.uri)
            return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.exists() else 0
        return self.count() * 4 * (self._dim or 0)

    def drop(self) -> None:
        """Delete the library's collections (tests, and `migrate` cleaning up a failed copy)."""
        for name in (self.collection, self.meta_collection):
            if self._has(name):
                self._call(self._client.drop_collection, name)
        self._dim = None

    def close(self) -> None:
        try:
            if self.local:
                self.flush()
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def _row(id_: int, r: ImageRecord, vector: np.ndarray, added: float) -> dict:
    if len(r.path.encode()) > MAX_PATH:
        raise LookalikeError(f"path longer than {MAX_PATH} bytes cannot be stored in Milvus: {r.path[:80]}...")
    return {"id": id_, "vector": vector.tolist(), "path": r.path, "sha256": r.sha256, "size": int(r.size),
            "mtime": float(r.mtime), "width": int(r.width), "height": int(r.height),
            "tags": json.dumps(r.tags), "labels": [t[0] for t in r.tags][:MAX_LABELS], "added": float(added),
            "fields": dict(r.fields)}


def _record(row: dict) -> ImageRecord:
    return ImageRecord(path=row["path"], sha256=row["sha256"], size=int(row["size"]), mtime=float(row["mtime"]),
                       width=int(row["width"]), height=int(row["height"]),
                       tags=[(t[0], t[1]) for t in json.loads(row["tags"])], added=float(row["added"]), id=int(row["id"]),
                       fields=dict(row.get("fields") or {}))


def _path_ok(path: str, where: SearchFilter | None) -> bool:
    return where is None or not where.path_prefix or path.startswith(where.path_prefix)


def _expr_ok(row: dict, expr) -> bool:
    return expr is None or matches(expr, row.get("fields") or {})


def _message(e: Exception) -> str:
    """The server's own words, on one line."""
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    return " ".join(str(msg).split())
