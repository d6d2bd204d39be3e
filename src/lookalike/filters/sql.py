"""`where` -> an SQLite condition over a JSON text column (values always bound, never spliced).

Each comparison is guarded by `json_type`, so it is false (not NULL) for a missing field or a
value of another type, which keeps SQL's logic two-valued like `matches`."""

from __future__ import annotations

from .nodes import And, Compare, Expr, In, Like, Literal, Not, Or

_SQL_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def to_sql(expr: Expr, column: str = "fields") -> tuple[str, list]:
    """(condition, parameters). `column` must be a trusted column name."""
    params: list = []
    return _sql(expr, column, params), params


def json_path(field: str) -> str:
    return '$."' + field + '"'  # names are [A-Za-z0-9_.] only (checked by the parser and the writer)


def _sql(expr: Expr, col: str, params: list) -> str:
    if isinstance(expr, (And, Or)):
        joiner = " AND " if isinstance(expr, And) else " OR "
        return "(" + joiner.join(_sql(e, col, params) for e in expr.items) + ")"
    if isinstance(expr, Not):
        return f"(NOT {_sql(expr.item, col, params)})"
    if isinstance(expr, Compare):
        return _compare(expr.field, expr.op, expr.value, col, params)
    if isinstance(expr, In):
        if expr.negate:
            params.append(json_path(expr.field))  # placeholders are numbered in text order
        anyof = " OR ".join(_compare(expr.field, "=", v, col, params) for v in expr.values)
        if not expr.negate:
            return f"({anyof})"
        return f"(json_type({col}, ?) IS NOT NULL AND NOT ({anyof}))"
    if isinstance(expr, Like):
        if not expr.prefix:  # every text matches; SQLite's substr(blob, 1, 0) is '' (text), never X''
            params.append(json_path(expr.field))
            return f"IFNULL(json_type({col}, ?) = 'text', 0)"
        params += [json_path(expr.field), json_path(expr.field), len(expr.prefix.encode()), expr.prefix.encode()]
        # Compared as bytes: LIKE would treat _ and % in the prefix as wildcards and ignore case.
        return (f"IFNULL(json_type({col}, ?) = 'text' AND substr(CAST(json_extract({col}, ?) AS BLOB), 1, ?) = ?, 0)")
    raise TypeError(f"not a where expression: {expr!r}")


def _compare(field: str, op: str, value: Literal, col: str, params: list) -> str:
    path = json_path(field)
    if isinstance(value, bool):
        if op not in ("=", "!="):
            return "0"
        params.append(path)
        wanted = "true" if value == (op == "=") else "false"
        return f"IFNULL(json_type({col}, ?) = '{wanted}', 0)"
    if isinstance(value, (int, float)):
        params += [path, path, value]
        return f"IFNULL(json_type({col}, ?) IN ('integer', 'real') AND json_extract({col}, ?) {_SQL_OPS[op]} ?, 0)"
    params += [path, path, value]
    scalar = f"IFNULL(json_type({col}, ?) = 'text' AND json_extract({col}, ?) {_SQL_OPS[op]} ?, 0)"
    if op not in ("=", "!="):
        return scalar
    params += [path, path, value]
    member = f"EXISTS (SELECT 1 FROM json_each({col}, ?) WHERE type = 'text' AND value = ?)"
    listed = f"IFNULL(json_type({col}, ?) = 'array' AND {'' if op == '=' else 'NOT '}{member}, 0)"
    return f"({scalar} OR {listed})"
