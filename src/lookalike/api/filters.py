"""Query filters shared by the search and duplicates endpoints: `under` (a folder on the
server) and `since` / `until` (dates), read the way the CLI reads --under/--since/--until."""

from __future__ import annotations

import datetime
import os

from fastapi import HTTPException

from ..store import SearchFilter

DATE_HELP = "YYYY-MM-DD or YYYY-MM-DDTHH:MM (the server's local time)"


def parse_date(value: str | None, name: str, end_of_day: bool = False) -> float | None:
    """A date or date-time -> Unix seconds; a date alone as `until` covers that whole day."""
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            start = datetime.datetime.combine(datetime.date.fromisoformat(text), datetime.time())
            moment = start + datetime.timedelta(days=1, microseconds=-1) if end_of_day else start
        else:
            moment = datetime.datetime.fromisoformat(text)
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise HTTPException(422, f"{name} must be a date, {DATE_HELP}; got {value!r}") from None


def make_filter(under: str | None, since: str | None, until: str | None) -> SearchFilter | None:
    prefix = None
    if under not in (None, ""):
        if "\x00" in under:  # type: ignore[operator]
            raise HTTPException(422, "under must be a folder path")
        prefix = os.path.abspath(os.path.expanduser(under)).rstrip(os.sep) + os.sep  # type: ignore[arg-type]
    where = SearchFilter(path_prefix=prefix, min_mtime=parse_date(since, "since"),
                         max_mtime=parse_date(until, "until", end_of_day=True))
    return None if where.is_empty() else where
