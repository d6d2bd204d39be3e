"""Reading a product file (CSV/TSV, JSON Lines, parquet) into raw rows, never stopping at a bad one.

Each row keeps where it came from (`line N` of a text file, `row N` of a parquet file) so the
closing report can name it. Rows that cannot be read at all (not UTF-8, malformed CSV/JSON)
become `ProblemRow`s; the rest are returned."""

from __future__ import annotations

import csv
import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ImageLoadError, MissingExtra, Unsupported

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
           ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class RawRow:
    where: str  # "line 7" / "row 3": how the report names it
    values: dict[str, Any]


@dataclass
class ProblemRow:
    where: str
    reason: str
    item: str | None = None  # the row's id when it could be read

    def __str__(self) -> str:
        return f"{self.where}{f' ({self.item})' if self.item else ''}: {self.reason}"


@dataclass
class RowFile:
    columns: list[str]
    rows: list[RawRow] = field(default_factory=list)
    problems: list[ProblemRow] = field(default_factory=list)
    typed: bool = False  # values already carry types (JSON, parquet); CSV cells are text


def file_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise Unsupported(f"{path}: unknown format {fmt!r} (csv, tsv, jsonl or parquet)")
        return fmt
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise Unsupported(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                          f"name it .csv, .tsv, .jsonl or .parquet, or pass --format")
    return found


def read_rows(path: str | Path, fmt: str | None = None) -> RowFile:
    path = Path(path)
    kind = file_format(path, fmt)
    if kind == "parquet":
        return _read_parquet(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageLoadError(str(path), f"cannot read ({e.strerror or e})") from None
    if kind == "jsonl":
        return _read_jsonl(data)
    return _read_csv(data, "\t" if kind == "tsv" else ",")


def _read_csv(data: bytes, delimiter: str) -> RowFile:
    # surrogateescape keeps undecodable bytes as lone surrogates: the row holding them is
    # reported as not UTF-8 while every other row is read normally.
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return RowFile([])
    except csv.Error as e:
        return RowFile([], problems=[ProblemRow("line 1", f"malformed header: {e}")])
    if _has_surrogates(header):
        return RowFile([], problems=[ProblemRow("line 1", "header is not UTF-8")])
    columns = [h.strip() for h in header]
    result = RowFile(columns)
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        result.problems.append(ProblemRow("line 1", f"duplicate column names {dupes}: the first of each is used"))
    last = reader.line_num
    while True:
        start = last + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            last = reader.line_num
            result.problems.append(ProblemRow(f"line {start}", f"malformed CSV: {e}"))
            continue
        last = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        where = f"line {start}"
        if _has_surrogates(cells):
            result.problems.append(ProblemRow(where, "not UTF-8 text"))
        elif len(cells) != len(columns):
            result.problems.append(ProblemRow(where, f"malformed: {len(cells)} values, the header has {len(columns)}"))
        else:
            values: dict[str, Any] = {}
            for name, cell in zip(columns, cells):
                values.setdefault(name, cell)
            result.rows.append(RawRow(where, values))
    return result


def _read_jsonl(data: bytes) -> RowFile:
    result = RowFile([], typed=True)
    seen: dict[str, None] = {}
    for number, line in enumerate(data.split(b"\n"), start=1):
        where = f"line {number}"
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            result.problems.append(ProblemRow(where, "not UTF-8 text"))
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            result.problems.append(ProblemRow(where, f"malformed JSON: {e.msg} at column {e.colno}"))
            continue
        if not isinstance(obj, dict):
            result.problems.append(ProblemRow(where, f"not a JSON object but {type(obj).__name__}"))
            continue
        seen.update(dict.fromkeys(obj))
        result.rows.append(RawRow(where, obj))
    result.columns = list(seen)
    return result


def _read_parquet(path: Path) -> RowFile:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtra("parquet import", "catalogue") from None
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:
        raise ImageLoadError(str(path), f"not a readable parquet file ({str(e).splitlines()[0][:120]})") from None
    result = RowFile(list(table.column_names), typed=True)
    for number, row in enumerate(table.to_pylist(), start=1):
        result.rows.append(RawRow(f"row {number}", {k: _plain(v) for k, v in row.items()}))
    return result


def _plain(value: Any) -> Any:
    """Parquet values as JSON-like Python values (dates as ISO strings, NaN as missing)."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (list, dict)):  # numpy/decimal scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    return value


def _has_surrogates(cells: list[str]) -> bool:
    return any("\udc80" <= c <= "\udcff" for cell in cells for c in cell)
