"""`where` -> a Milvus boolean expression over a JSON field (`fields["price"] <= 60`).

The result may match *more* rows than `matches` would, never fewer: the store re-checks every
row it returns with `matches`, so answers are exact. Two places are deliberately coarse:
- Milvus reads a comparison on a missing JSON key as null, and `not null` is null (excluded),
  where `matches` says true. So a comparison under an odd number of `not`s compiles to
  "false" (its `not` to "true") and is decided by the re-check alone;
- a LIKE prefix is cut at its first `_`, `%` or backslash (wildcards or escapes in Milvus)."""

from __future__ import annotations

import json

from .nodes import And, Compare, Expr, In, Like, Literal, Not, Or

ALWAYS = "(id >= 0)"
NEVER = "(id < 0)"  # parenthesised: Milvus 2.3 parses `not id < 0` as `(not id) < 0`
_OPS = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def to_milvus(expr: Expr, column: str = "fields", types: dict[str, set[str]] | None = None) -> str:
    """`types` (field -> value types) lets `=` on a string field skip the list form and back."""
    return _expr(expr, column, types or {}, positive=True)


def literal(value: Literal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ref(column: str, field: str) -> str:
    return f"{column}[{json.dumps(field)}]"


def _expr(expr: Expr, col: str, types: dict, positive: bool) -> str:
    if isinstance(expr, (And, Or)):
        joiner = " and " if isinstance(expr, And) else " or "
        return "(" + joiner.join(_expr(e, col, types, positive) for e in expr.items) + ")"
    if isinstance(expr, Not):
        return f"(not {_expr(expr.item, col, types, not positive)})"
    if not positive:
        return NEVER  # a comparison under `not`: left to the re-check (see the module notes)
    if isinstance(expr, Compare):
        return _compare(expr.field, expr.op, expr.value, col, types)
    if isinstance(expr, In):
        # `not in` is false on a missing key in both worlds: no polarity flip needed here.
        anyof = " or ".join(_compare(expr.field, "=", v, col, types) for v in expr.values)
        return f"(not ({anyof}))" if expr.negate else f"({anyof})"
    if isinstance(expr, Like):
        cut = expr.prefix
        for special in "%_\\":
            cut = cut.split(special, 1)[0]
        return f"({_ref(col, expr.field)} like {literal(cut + '%')})"
    raise TypeError(f"not a where expression: {expr!r}")


def _compare(field: str, op: str, value: Literal, col: str, types: dict) -> str:
    ref = _ref(col, field)
    kinds = types.get(field, {"string", "list"})
    if isinstance(value, str) and op in ("=", "!=") and "list" in kinds:
        contains = f"json_contains({ref}, {literal(value)})"
        member = contains if op == "=" else f"not {contains}"
        if kinds == {"list"}:
            return f"({member})"
        return f"({ref} {_OPS[op]} {literal(value)} or {member})"
    return f"({ref} {_OPS[op]} {literal(value)})"
