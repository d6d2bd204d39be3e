"""From raw rows to checked item rows: id, image sources and typed fields, or a reported problem."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import InvalidQuery, LookalikeError
from .columns import convert, infer_type, plain_value
from .items import RESERVED_FIELDS, check_item_id
from .rows import ProblemRow, RowFile


@dataclass
class ItemRow:
    where: str
    item: str
    image: str  # primary image: an http(s) URL or an absolute path
    extra: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)  # the shop's columns, typed

    def record_fields(self) -> dict[str, Any]:
        """The record's full `fields`: the catalogue's own keys plus the shop's columns."""
        own: dict[str, Any] = {"item": self.item, "image": self.image}
        if self.extra:
            own["images"] = list(self.extra)
        return {**self.fields, **own}


@dataclass
class CheckedRows:
    items: list[ItemRow]
    problems: list[ProblemRow]
    seen_ids: set[str]  # every id the file names, problem rows included (never pruned)
    types: dict[str, str]  # column -> type used
    skipped_columns: list[str]  # shop columns not imported because their name is reserved
    renamed: dict[str, str] = field(default_factory=dict)  # column -> field name filters can address


def check_rows(table: RowFile, id_column: str, image_columns: list[str], *, field_columns: list[str] | None = None,
               types: dict[str, str] | None = None, base_dir: Path | None = None, source: str = "file") -> CheckedRows:
    """`field_columns` None: every column other than the id and image columns."""
    types = dict(types or {})
    if not image_columns:
        raise InvalidQuery("name the image column with --image COLUMN")
    known = set(table.columns)
    needed = [id_column, *image_columns, *(field_columns or []), *types]
    missing = [c for c in needed if c not in known]
    if missing and table.rows:
        shown = ", ".join(table.columns[:30]) or "none"
        raise InvalidQuery(f"{source}: no column {missing[0]!r} (columns: {shown})")
    chosen = field_columns if field_columns is not None else [c for c in table.columns if c not in (id_column, *image_columns)]
    skipped = [c for c in chosen if c in RESERVED_FIELDS]
    chosen = [c for c in chosen if c not in RESERVED_FIELDS and c not in (id_column, *image_columns)]
    if not table.typed:
        for c in chosen:
            if c not in types:
                types[c] = infer_type([r.values.get(c) or "" for r in table.rows])
    problems = list(table.problems)
    items: list[ItemRow] = []
    first_seen: dict[str, str] = {}
    for row in table.rows:
        raw_id = row.values.get(id_column)
        if raw_id is None or (isinstance(raw_id, str) and not raw_id.strip()):
            problems.append(ProblemRow(row.where, f"missing id (column {id_column!r})"))
            continue
        try:
            item = check_item_id(raw_id, f"column {id_column!r}")
        except LookalikeError as e:
            problems.append(ProblemRow(row.where, str(e)))
            continue
        if item in first_seen:
            problems.append(ProblemRow(row.where, f"duplicate id: the first row ({first_seen[item]}) wins", item))
            continue
        first_seen[item] = row.where
        images = [_source(row.values.get(c), base_dir) for c in image_columns]
        if not images[0]:
            problems.append(ProblemRow(row.where, f"missing image (column {image_columns[0]!r})", item))
            continue
        try:
            fields = _typed_fields(row.values, chosen, types, table.typed)
        except ValueError as e:
            problems.append(ProblemRow(row.where, str(e), item))
            continue
        items.append(ItemRow(row.where, item, images[0], [s for s in images[1:] if s], fields))
    renamed = {c: field_name(c) for c in chosen if field_name(c) != c}
    if renamed:
        for it in items:
            it.fields = {renamed.get(k, k): v for k, v in it.fields.items()}
    return CheckedRows(items, problems, set(first_seen), types, skipped, renamed)


def field_name(column: str) -> str:
    """A column name as a field name the `where` language accepts ([A-Za-z_][A-Za-z0-9_.]*)."""
    name = re.sub(r"[^A-Za-z0-9_.]", "_", column.strip())[:128] or "_"
    return name if re.match(r"[A-Za-z_]", name) else "_" + name[:127]


def _typed_fields(values: dict[str, Any], columns: list[str], types: dict[str, str], typed: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for c in columns:
        raw = values.get(c)
        try:
            value = convert(raw, types[c]) if c in types else plain_value(raw)
        except ValueError as e:
            kind = f" ({types[c]})" if c in types else ""
            raise ValueError(f"bad value in column {c!r}{kind}: {e}") from None
        if value is not None and value != []:
            fields[c] = value
    return fields


def _source(value: Any, base_dir: Path | None) -> str:
    """An image cell as a URL or an absolute path (relative paths are relative to the product file)."""
    if value is None:
        return ""
    text = str(value).strip()
    if not text or text.lower().startswith(("http://", "https://")):
        return text
    path = Path(os.path.expanduser(text))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return os.path.abspath(path)
