"""Typed field values: what a record's `fields` may hold and what type each value has."""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import InvalidQuery

# field name -> the types its values have had ("string", "number", "boolean", "date", "list").
FieldTypes = dict[str, set[str]]

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
MAX_NAME = 128


def value_type(value: Any) -> str | None:
    """The filter type of a stored value, or None when fields cannot hold it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return "number" if math.isfinite(value) else None  # JSON has no NaN/inf
    if isinstance(value, str):
        return "date" if ISO_DATE.match(value) else "string"
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "list"
    return None


def check_fields(fields: dict[str, Any], where: str = "record") -> dict[str, str]:
    """Validate a record's fields; returns name -> type. Raises InvalidQuery naming the
    first bad field (a name the filter language cannot address, or a value of another type)."""
    types: dict[str, str] = {}
    for name, value in fields.items():
        if not isinstance(name, str) or not FIELD_NAME.match(name) or len(name) > MAX_NAME:
            raise InvalidQuery(f"{where}: field name {name!r} is not usable in filters "
                               f"(letters, digits, _ and ., starting with a letter or _)")
        kind = value_type(value)
        if kind is None:
            raise InvalidQuery(f"{where}: field {name!r} has a {type(value).__name__} value {value!r:.60}; "
                               f"fields hold strings, numbers, booleans, ISO dates or lists of strings")
        types[name] = kind
    return types
