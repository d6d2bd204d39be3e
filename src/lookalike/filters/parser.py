"""Tokenizer and recursive-descent parser for `where` expressions (grammar: docs/filters.md).

Errors are one line, `InvalidQuery(message, position=offset)`, and name the column (1-based)
of the offending token."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..errors import InvalidQuery
from .nodes import And, Compare, Expr, In, Like, Literal, Not, Or
from .values import FIELD_NAME, ISO_DATE, FieldTypes

KEYWORDS = {"and", "or", "not", "in", "like", "true", "false"}
COMPARISONS = {"=", "==", "!=", "<", "<=", ">", ">="}
MAX_LENGTH = 10_000
MAX_DEPTH = 50  # nesting guard: a hostile "((((..." must not blow the Python stack

_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


@dataclass(frozen=True)
class Token:
    kind: str  # "(", ")", "[", "]", ",", "op", "string", "number", "ident", "keyword", "end"
    value: object
    pos: int
    text: str


def _error(message: str, pos: int, detail: str = "") -> InvalidQuery:
    return InvalidQuery(f"where: {message} at column {pos + 1}{detail}", position=pos)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()[],":
            tokens.append(Token(c, c, i, c))
            i += 1
        elif c in "=!<>":
            two = text[i:i + 2]
            op = two if two in COMPARISONS else c
            if op not in COMPARISONS:
                raise _error(f"unexpected {c!r}", i)
            tokens.append(Token("op", "=" if op == "==" else op, i, op))
            i += len(op)
        elif c in "\"'":
            value, end = _string(text, i)
            tokens.append(Token("string", value, i, text[i:end]))
            i = end
        elif (m := _NUMBER.match(text, i)) and (c != "-" or m.end() > i + 1):
            raw = m.group(0)
            number: int | float = float(raw) if any(ch in raw for ch in ".eE") else int(raw)
            tokens.append(Token("number", number, i, raw))
            i = m.end()
        elif m := _IDENT.match(text, i):
            word = m.group(0)
            kind = "keyword" if word.lower() in KEYWORDS else "ident"
            tokens.append(Token(kind, word.lower() if kind == "keyword" else word, i, word))
            i = m.end()
        else:
            raise _error(f"unexpected {c!r}", i)
    tokens.append(Token("end", None, len(text), "end of expression"))
    return tokens


def _string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise _error("unterminated string", start)


def parse(text: str, types: FieldTypes | None = None) -> Expr:
    """Parse `text`; with `types` (field -> its value types), unknown fields and literals of
    the wrong type are errors too."""
    if len(text) > MAX_LENGTH:
        raise InvalidQuery(f"where: expression longer than {MAX_LENGTH} characters", position=MAX_LENGTH)
    if not text.strip():
        raise InvalidQuery("where: empty expression", position=0)
    return _Parser(tokenize(text), types).parse()


def _shown(tok: Token) -> str:
    return tok.text if tok.kind == "end" else repr(tok.text) if tok.kind != "string" else tok.text


class _Parser:
    def __init__(self, tokens: list[Token], types: FieldTypes | None) -> None:
        self.tokens = tokens
        self.i = 0
        self.types = types
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, value: object = None) -> bool:
        return self.tok.kind == kind and (value is None or self.tok.value == value)

    def _expect(self, kind: str, what: str) -> Token:
        if not self._is(kind):
            raise _error(f"expected {what}, got {_shown(self.tok)}", self.tok.pos)
        return self._take()

    def parse(self) -> Expr:
        expr = self._or()
        if not self._is("end"):
            raise _error(f"unexpected {_shown(self.tok)}", self.tok.pos)
        return expr

    def _or(self) -> Expr:
        items = [self._and()]
        while self._is("keyword", "or"):
            self._take()
            items.append(self._and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def _and(self) -> Expr:
        items = [self._not()]
        while self._is("keyword", "and"):
            self._take()
            items.append(self._not())
        return items[0] if len(items) == 1 else And(tuple(items))

    def _not(self) -> Expr:
        if self._is("keyword", "not"):
            tok = self._take()
            self._nest(tok)
            try:
                return Not(self._not())
            finally:
                self.depth -= 1
        return self._primary()

    def _nest(self, tok: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _error(f"expression nested deeper than {MAX_DEPTH} levels", tok.pos)

    def _primary(self) -> Expr:
        if self._is("("):
            tok = self._take()
            self._nest(tok)
            try:
                expr = self._or()
            finally:
                self.depth -= 1
            self._expect(")", "')'")
            return expr
        if not self._is("ident"):
            what = "a field name" if self.tok.kind != "keyword" else "a field name (quote-free; keywords are reserved)"
            raise _error(f"expected {what}, got {_shown(self.tok)}", self.tok.pos)
        name = self._take()
        field = str(name.value)
        self._check_field(name)
        if self._is("op"):
            op = self._take()
            value = self._literal()
            self._check_literal(field, value, op=str(op.value))
            return Compare(field, str(op.value), value.value)  # type: ignore[arg-type]  # _literal(): a str or number token
        negate = False
        if self._is("keyword", "not"):
            self._take()
            negate = True
            if not self._is("keyword", "in"):
                raise _error(f"expected 'in' after 'not', got {_shown(self.tok)}", self.tok.pos)
        if self._is("keyword", "in"):
            self._take()
            return In(field, self._list(field), negate)
        if self._is("keyword", "like"):
            self._take()
            pattern = self._expect("string", 'a string pattern such as "abc%"')
            prefix = str(pattern.value)
            if not prefix.endswith("%") or "%" in prefix[:-1]:
                raise _error('like takes a prefix pattern: "text%" (one % at the end, no other wildcards)', pattern.pos)
            self._check_literal(field, pattern, op="like")
            return Like(field, prefix[:-1])
        raise _error(f"expected an operator (= != < <= > >= in like) after {field!r}, got {_shown(self.tok)}",
                     self.tok.pos)

    def _literal(self) -> Token:
        tok = self.tok
        if tok.kind in ("string", "number"):
            return self._take()
        if tok.kind == "keyword" and tok.value in ("true", "false"):
            self._take()
            return Token("bool", tok.value == "true", tok.pos, tok.text)
        raise _error(f"expected a value (string, number, true or false), got {_shown(tok)}", tok.pos)

    def _list(self, field: str) -> tuple[Literal, ...]:
        self._expect("[", "'['")
        values: list[Literal] = []
        if self._is("]"):
            raise _error("empty list", self.tok.pos)
        while True:
            tok = self._literal()
            self._check_literal(field, tok, op="in")
            values.append(tok.value)  # type: ignore[arg-type]  # _literal(): a str or number token
            if self._is("]"):
                self._take()
                return tuple(values)
            self._expect(",", "',' or ']'")

    # -- checks against the library's known fields ------------------------------------------
    def _check_field(self, tok: Token) -> None:
        name = str(tok.value)
        if not FIELD_NAME.match(name):
            raise _error(f"invalid field name {name!r}", tok.pos)
        if self.types is None or name in self.types:
            return
        known = sorted(self.types)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "") if known else "none: no image has fields yet"
        raise _error(f"unknown field {name!r}", tok.pos, f" (known: {listed}){hint}")

    def _check_literal(self, field: str, tok: Token, op: str) -> None:
        if self.types is None or field not in self.types:
            return
        kinds = self.types[field]
        value = tok.value
        if isinstance(value, bool):
            got, ok = "boolean", "boolean" in kinds and op in ("=", "!=", "in")
        elif isinstance(value, (int, float)):
            got, ok = "number", "number" in kinds and op != "like"
        else:
            got = "string"
            ok = ("string" in kinds or "list" in kinds and op in ("=", "!=", "in")
                  or "date" in kinds and (op == "like" or ISO_DATE.match(str(value)) is not None))
        if ok:
            return
        kind = " or ".join(sorted(kinds))
        if op == "like":
            raise _error(f"{field!r} is a {kind}: like applies to strings and dates", tok.pos)
        shown = f'"{value}"' if got == "string" else str(value).lower() if got == "boolean" else str(value)
        if got == "string" and kinds == {"date"}:
            raise _error(f"{field!r} is a date: compare it with an ISO 8601 string such as \"2024-05-01\" or "
                         f"\"2024-05-01T12:00:00\", got {shown}", tok.pos)
        if got == "boolean" and "boolean" in kinds or got == "string" and "list" in kinds:
            raise _error(f"{field!r} is a {kind}: operator {op!r} does not apply (use = != in)", tok.pos)
        raise _error(f"{field!r} is a {kind}, got {got} {shown}", tok.pos)
