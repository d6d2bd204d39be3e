"""`import_items`: a product file into a library (read, check, type, fetch, embed, prune)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ...errors import InvalidQuery
from ..indexer import ProgressFn
from .downloads import CACHE_DIR, DownloadCache, Downloader, FetchPolicy
from .importer import ImportReport, ItemImporter, prune_items
from .rowcheck import check_rows
from .rows import read_rows


def import_items(lib, source: str | os.PathLike, id_column: str, image_columns: list[str], *,
                 fields: list[str] | None = None, types: dict[str, str] | None = None, prune: bool = False,
                 fmt: str | None = None, policy: FetchPolicy | None = None, batch_size: int = 32,
                 workers: int | None = None, progress: ProgressFn | None = None, sync_index: bool = True) -> ImportReport:
    """Upsert the items of a CSV/TSV/JSONL/parquet file into `lib` (a `Library`); see importer.py.
    `fields` None imports every column; `types` declares column types (else inferred for CSV).
    With `prune`, items whose id the file does not name are removed."""
    refusal = lib.store.write_refusal()  # read-only or full disk: say so before any model work
    if refusal is not None:
        raise refusal
    t0 = time.perf_counter()
    path = Path(source)
    table = read_rows(path, fmt)
    if not table.rows and not table.problems:
        raise InvalidQuery(f"{path}: no rows")
    checked = check_rows(table, id_column, image_columns, field_columns=fields, types=types,
                         base_dir=path.resolve().parent, source=str(path))
    report = ImportReport(problems=checked.problems)
    if checked.skipped_columns:
        report.notes.append(f"columns {checked.skipped_columns} not imported: item, image and images are the catalogue's own fields")
    for column, name in checked.renamed.items():
        report.notes.append(f"column {column!r} imported as field {name!r} (names filters can address)")
    cache = DownloadCache(lib.directory / CACHE_DIR)
    try:
        importer = ItemImporter(lib.store, lib.extractor, Downloader(cache, policy), batch_size=batch_size,
                                workers=workers, progress=progress, colours=lib.colours)
        importer.run(checked.items, report)
    finally:
        cache.close()
    if prune:
        report.removed = prune_items(lib.store, checked.seen_ids)
    report.problems.sort(key=_row_order)
    report.seconds = time.perf_counter() - t0
    if sync_index:
        lib.sync_index()
    return report


def _row_order(problem) -> tuple[int, str]:
    _, _, number = problem.where.partition(" ")
    return (int(number) if number.isdigit() else 0, problem.reason)
