"""Items and their fields back out as CSV or JSON Lines (what `catalogue import` reads back)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from ...errors import Unsupported
from ...store import VectorStore
from .columns import LIST_SEPARATOR
from .importer import item_records


def export_items(store: VectorStore, path: Path | None) -> int:
    """Write items sorted by id to `path` (.csv or .jsonl; None: JSON Lines on stdout); returns the count."""
    records = sorted(item_records(store).items())
    rows = [{"item": item, **{k: v for k, v in r.fields.items() if k != "item"}} for item, r in records]
    if path is None:
        for row in rows:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return len(rows)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        with open(path, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif suffix in (".csv", ".tsv"):
        columns = ["item", "image"] + sorted({k for row in rows for k in row} - {"item", "image"})
        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, columns, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
    else:
        raise Unsupported(f"{path}: export writes .csv, .tsv or .jsonl")
    return len(rows)


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return LIST_SEPARATOR.join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
