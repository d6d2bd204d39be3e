"""Typing a product file's columns, so `price <= 60` compares numbers and `launched >= "2024-01-01"` dates.

CSV cells are text: each column's type is inferred from all its non-empty cells (int, float,
bool, ISO date, else str) or declared (`--type price=float`). JSON and parquet values keep
their own types unless declared. An empty cell means "no value" (the field is left out)."""

from __future__ import annotations

import math
import re
from typing import Any

from ...errors import InvalidQuery

TYPES = ("str", "int", "float", "bool", "date", "list")
LIST_SEPARATOR = "|"

_INT = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")  # "007" stays text: codes and zip codes are not numbers
_FLOAT = re.compile(r"^[+-]?((0|[1-9]\d*)(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_LOOSE_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")  # a declared float may be "007.5"
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def parse_type_specs(specs: list[str] | None) -> dict[str, str]:
    """`["price=float", "tags=list"]` -> {"price": "float", "tags": "list"}."""
    types: dict[str, str] = {}
    for spec in specs or []:
        name, sep, kind = spec.partition("=")
        name, kind = name.strip(), kind.strip().lower()
        if not sep or not name:
            raise InvalidQuery(f"--type {spec!r}: expected COLUMN=TYPE, e.g. price=float")
        if kind not in TYPES:
            raise InvalidQuery(f"--type {spec!r}: unknown type {kind!r} (one of {', '.join(TYPES)})")
        types[name] = kind
    return types


def infer_type(cells: list[str]) -> str:
    """The narrowest type every non-empty cell of a text column parses as."""
    values = [c.strip() for c in cells if c is not None and c.strip()]
    if not values:
        return "str"
    if all(_INT.match(v) for v in values):
        return "int"
    if all(_FLOAT.match(v) for v in values):
        return "float"
    if all(v.lower() in ("true", "false") for v in values):
        return "bool"
    if all(ISO_DATE.match(v) for v in values):
        return "date"
    return "str"


def convert(value: Any, kind: str) -> Any:
    """`value` as `kind`; None for an empty value. Raises ValueError with a short reason."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if kind == "str":
        return value.strip() if isinstance(value, str) else _text(value)
    if kind == "list":
        if isinstance(value, list):
            return [_text(v) for v in value if v is not None and _text(v)]
        return [part.strip() for part in _text(value).split(LIST_SEPARATOR) if part.strip()]
    if isinstance(value, list | dict):
        raise ValueError(f"a {type(value).__name__} is not {_article(kind)}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = str(value).strip()
        if _INT.match(text) or re.match(r"^[+-]?\d+$", text):
            return int(text)
        raise ValueError(f"{text!r:.40} is not an integer")
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(f"{value!r} is not a number")
        if isinstance(value, int | float):
            number = float(value)
        else:
            text = str(value).strip()
            if not _LOOSE_FLOAT.match(text):
                raise ValueError(f"{text!r:.40} is not a number")
            number = float(text)
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{str(value)!r:.40} is not a boolean (true/false, yes/no, 1/0)")
    if kind == "date":
        text = str(value).strip()
        if not ISO_DATE.match(text):
            raise ValueError(f"{text!r:.40} is not an ISO date (YYYY-MM-DD[THH:MM[:SS]])")
        return text
    raise ValueError(f"unknown type {kind!r}")


def plain_value(value: Any) -> Any:
    """A typed (JSON/parquet) value as a field value, or ValueError when fields cannot hold it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"a {type(value).__name__} value; fields hold strings, numbers, booleans, dates or lists of strings")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else str(value)


def _article(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "a boolean", "date": "a date"}.get(kind, kind)
