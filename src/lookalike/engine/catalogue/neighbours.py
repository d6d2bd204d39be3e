"""Bulk neighbours for recommendation pipelines: for every item (or those a filter keeps), its
k most similar items, streamed to CSV or parquet as (item, rank, neighbour, score) rows.

Queries go to the store in batches (one matrix product or one ANN batch per `batch` items), the
item itself is dropped from its own list, and rows are written batch by batch so memory stays
flat. `same=FIELD` restricts each item's neighbours to items with the same value of FIELD
(e.g. category): one filtered batched search per value."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import InvalidQuery, MissingExtra, Unsupported
from ...filters import And, Compare
from ...store import SearchFilter, VectorStore
from ..indexer import ProgressFn
from .items import ITEM_PREFIX, item_id

Row = tuple[str, int, str, float]


def neighbour_rows(lib, k: int, *, where: str | SearchFilter | None = None, same: str | None = None, batch: int = 256,
                   progress: ProgressFn | None = None) -> Iterator[list[Row]]:
    """Batches of rows, item by item in id order within each group. `where` (a filter
    expression over fields) restricts both the items listed and their neighbours."""
    progress = progress or (lambda done, total: None)
    store: VectorStore = lib.store
    scope = lib.where(where, SearchFilter(path_prefix=ITEM_PREFIX))
    if same is not None and same not in lib.field_types():
        raise InvalidQuery(f"--same {same!r}: no item has this field")
    records = [r for r in store.iter_records(where=scope) if item_id(r.path) is not None]
    groups: dict[object, list] = defaultdict(list)
    if same is None:
        groups[None] = records
    else:
        for r in records:
            value = r.fields.get(same)
            if value is not None and not isinstance(value, list):
                groups[value].append(r)
    total = sum(len(g) for g in groups.values())
    done = 0
    progress(0, total)
    for value, members in groups.items():
        flt = scope if same is None else _with_value(scope, same, value)
        for start in range(0, len(members), batch):
            chunk = members[start:start + batch]
            vectors = store.vectors([r.id for r in chunk])
            results = store.search(vectors, k + 1, flt)
            ids = {i for res in results for i, _ in res}
            paths = {i: rec.path for i, rec in store.get(list(ids)).items()}
            rows: list[Row] = []
            for rec, res in zip(chunk, results):
                me = item_id(rec.path)
                rank = 0
                for i, score in res:
                    if i == rec.id or i not in paths or item_id(paths[i]) is None:
                        continue
                    rank += 1
                    if rank > k:
                        break
                    rows.append((me, rank, item_id(paths[i]), round(float(score), 6)))  # type: ignore[arg-type]
            done += len(chunk)
            progress(done, total)
            yield rows


def write_neighbours(batches: Iterator[list[Row]], out: Path) -> int:
    """Stream row batches to `out` (.csv or .parquet); returns the number of rows."""
    suffix = out.suffix.lower()
    count = 0
    if suffix in (".csv", ".tsv"):
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerow(["item", "rank", "neighbour", "score"])
            for rows in batches:
                writer.writerows(rows)
                count += len(rows)
        return count
    if suffix not in (".parquet", ".pq"):
        raise Unsupported(f"{out}: neighbours are written as .csv, .tsv or .parquet")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtra("parquet output", "catalogue") from None
    schema = pa.schema([("item", pa.string()), ("rank", pa.int32()), ("neighbour", pa.string()), ("score", pa.float32())])
    with pq.ParquetWriter(out, schema) as writer:
        for rows in batches:
            if not rows:
                continue
            columns = list(zip(*rows))
            writer.write_table(pa.table([pa.array(columns[0], pa.string()), pa.array(columns[1], pa.int32()),
                                         pa.array(columns[2], pa.string()), pa.array(np.asarray(columns[3], np.float32))],
                                        schema=schema))
            count += len(rows)
    return count


def _with_value(scope: SearchFilter, name: str, value) -> SearchFilter:
    """`scope` and also `name = value`."""
    same = Compare(name, "=", value)
    return replace(scope, expr=same if scope.expr is None else And((scope.expr, same)))
