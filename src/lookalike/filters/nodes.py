"""The AST of a `where` expression: frozen, hashable, compared by value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

Literal = Union[str, int, float, bool]


@dataclass(frozen=True)
class Compare:
    """`field op value`; op is one of = != < <= > >=. On a list field `=` means "contains"
    and `!=` "does not contain"."""

    field: str
    op: str
    value: Literal


@dataclass(frozen=True)
class In:
    """`field in [v, ...]` (any of; on a list field: contains any); `negate` for `not in`."""

    field: str
    values: tuple[Literal, ...]
    negate: bool = False


@dataclass(frozen=True)
class Like:
    """`field like "prefix%"`: the string starts with `prefix` (no other wildcards)."""

    field: str
    prefix: str


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    item: Expr


Expr = Union[Compare, In, Like, And, Or, Not]
