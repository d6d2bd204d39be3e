"""How an item maps onto a library record."""

from __future__ import annotations

from ...errors import InvalidQuery

ITEM_PREFIX = "item:"
# Field names the catalogue owns; a shop column with one of these names is not imported.
RESERVED_FIELDS = frozenset({"item", "image", "images"})
MAX_ID_LENGTH = 512


def item_path(item: str) -> str:
    """The record path of an item: indexed lookup by id on every store."""
    return ITEM_PREFIX + item


def item_id(path: str) -> str | None:
    """The item id of a record path, or None for an ordinary file."""
    return path[len(ITEM_PREFIX):] if path.startswith(ITEM_PREFIX) else None


def check_item_id(item: object, where: str = "item") -> str:
    """A usable external id: a non-empty single-line string (numbers are taken as their text)."""
    if isinstance(item, bool) or not isinstance(item, (str, int)):
        raise InvalidQuery(f"{where}: id must be a string, not {type(item).__name__}")
    text = str(item).strip()
    if not text:
        raise InvalidQuery(f"{where}: empty id")
    if len(text) > MAX_ID_LENGTH or any(c in text for c in "\r\n\0"):
        raise InvalidQuery(f"{where}: id must be one line of at most {MAX_ID_LENGTH} characters")
    return text
