"""Query filters shared by the search and duplicates endpoints: `under` (a folder on the
server) and `since` / `until` (dates), read by the engine exactly as the CLI's options are."""

from __future__ import annotations

from ..engine.params import DATE_HELP, make_filter

__all__ = ["DATE_HELP", "make_filter"]
