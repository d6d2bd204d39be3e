"""Orders for browsing a library: by when the picture was taken, by folder, by name."""

from __future__ import annotations

import os
from typing import Callable, Iterable

from ..errors import InvalidQuery
from ..store import ImageRecord
from .entries import entry_time, file_of
from .media_fields import record_date

# "-" in front reverses an order (newest first: "-date").
SORTS = ("id", "date", "folder", "name")


def check_sort(sort: str | None) -> str | None:
    if sort is None or sort.lstrip("-") in SORTS:
        return sort
    raise InvalidQuery(f"sort {sort!r} is not one of {', '.join(SORTS)} (a leading '-' reverses it)")


def sort_records(records: Iterable[ImageRecord], sort: str) -> list[ImageRecord]:
    """`records` in the order `sort` names; ties (and a video's frames) in time order."""
    key = _KEYS[sort.lstrip("-")]
    return sorted(records, key=key, reverse=sort.startswith("-"))


def date_of(rec: ImageRecord) -> str:
    """The record's `date` field (capture time, else file time), derived if it predates fields."""
    value = rec.fields.get("date")
    return value if isinstance(value, str) else record_date(None, rec.mtime)


def _in_file(rec: ImageRecord) -> float:
    return entry_time(rec.path) or 0.0


_KEYS: dict[str, Callable[[ImageRecord], tuple]] = {
    "id": lambda r: (r.id or 0,),
    "date": lambda r: (date_of(r), file_of(r.path), _in_file(r)),
    "folder": lambda r: (os.path.dirname(file_of(r.path)), os.path.basename(file_of(r.path)).lower(), _in_file(r)),
    "name": lambda r: (os.path.basename(file_of(r.path)).lower(), file_of(r.path), _in_file(r)),
}
