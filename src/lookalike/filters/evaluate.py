"""The reference evaluator: what every backend's compiled filter must agree with.

Two-valued logic: a comparison on a field the record lacks, or whose value has another type
than the literal, is false (and `not` of it true)."""

from __future__ import annotations

import operator
from typing import Any, Callable

from .nodes import And, Compare, Expr, In, Like, Literal, Not, Or

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def matches(expr: Expr, fields: dict[str, Any]) -> bool:
    if isinstance(expr, And):
        return all(matches(e, fields) for e in expr.items)
    if isinstance(expr, Or):
        return any(matches(e, fields) for e in expr.items)
    if isinstance(expr, Not):
        return not matches(expr.item, fields)
    if isinstance(expr, Compare):
        return compare(fields.get(expr.field), expr.op, expr.value)
    if isinstance(expr, In):
        if expr.field not in fields:
            return False
        found = any(compare(fields[expr.field], "=", v) for v in expr.values)
        return found != expr.negate
    if isinstance(expr, Like):
        value = fields.get(expr.field)
        return isinstance(value, str) and value.startswith(expr.prefix)
    raise TypeError(f"not a where expression: {expr!r}")


def compare(value: Any, op: str, literal: Literal) -> bool:
    """`value op literal` when both have the same type; on a list, = is "contains"."""
    if value is None:
        return False
    if isinstance(value, list):
        if not isinstance(literal, str) or op not in ("=", "!="):
            return False
        return (literal in value) == (op == "=")
    if isinstance(literal, bool) or isinstance(value, bool):
        if not (isinstance(literal, bool) and isinstance(value, bool)) or op not in ("=", "!="):
            return False
        return _OPS[op](value, literal)
    if isinstance(literal, str) != isinstance(value, str):
        return False
    return _OPS[op](value, literal)
