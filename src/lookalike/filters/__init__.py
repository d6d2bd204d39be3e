"""The `where` filter language over a record's `fields` (docs/filters.md).

Parsed once (`parse`) into a small AST, then run by each backend: `matches` (the Python
reference), `to_sql` (SQLite json_extract, values bound) and `to_milvus` (a Milvus boolean
expression over the JSON field). Lives below `store/` so stores can compile it."""

from .evaluate import matches
from .milvus import to_milvus
from .nodes import And, Compare, Expr, In, Like, Not, Or
from .parser import parse
from .sql import to_sql
from .values import FieldTypes, check_fields, value_type

__all__ = ["And", "Compare", "Expr", "FieldTypes", "In", "Like", "Not", "Or", "check_fields", "matches", "parse",
           "to_milvus", "to_sql", "value_type"]
