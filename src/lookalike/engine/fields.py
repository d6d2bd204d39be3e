"""The `fields` every indexed file gets (filterable with `where`, docs/filters.md).

`file_fields` gives the facts about the file itself; other sources (EXIF, DICOM, ...) add
theirs by appending a function to `FIELD_SOURCES`. `record_fields` merges them, file facts
last so they always hold."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from ..errors import InvalidQuery
from ..filters import check_fields

FILE_FIELDS = ("folder", "name", "format", "width", "height", "bytes", "mtime")


@dataclass(frozen=True)
class ImageInfo:
    """What the indexer knows about a file without decoding it again."""

    format: str | None  # the decoder's format name, lower case ("jpeg", "png", ...)
    width: int
    height: int
    bytes: int
    mtime: float  # Unix seconds


# (path, info) -> extra fields. A source that raises, or returns values fields cannot hold,
# only loses its own fields for that file.
FieldSource = Callable[[str, ImageInfo], dict[str, Any]]
FIELD_SOURCES: list[FieldSource] = []


def file_fields(path: str, info: ImageInfo) -> dict[str, Any]:
    """folder (absolute parent), name, format, width, height, bytes, mtime (local ISO 8601)."""
    fields: dict[str, Any] = {
        "folder": os.path.dirname(path),
        "name": os.path.basename(path),
        "width": int(info.width),
        "height": int(info.height),
        "bytes": int(info.bytes),
        "mtime": datetime.fromtimestamp(info.mtime).isoformat(timespec="seconds"),
    }
    if info.format:
        fields["format"] = info.format
    return fields


def record_fields(path: str, info: ImageInfo, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """`previous` fields (e.g. catalogue columns), then every source's, then the file's own."""
    fields = dict(previous or {})
    for source in FIELD_SOURCES:
        try:
            extra = source(path, info)
        except Exception:  # noqa: BLE001 - a malformed EXIF block must not cost the image
            continue
        for name, value in extra.items():
            try:
                check_fields({name: value})
            except InvalidQuery:
                continue  # a name or value fields cannot hold: dropped, the rest kept
            fields[name] = value
    fields.update(file_fields(path, info))
    return fields


def has_file_fields(fields: dict[str, Any]) -> bool:
    return all(name in fields for name in FILE_FIELDS if name != "format")
