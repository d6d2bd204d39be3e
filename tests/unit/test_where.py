"""The `where` language on its own: grammar, errors (message and column), typing against a
library's fields, and the reference evaluator's semantics (lists, missing fields, types)."""

from __future__ import annotations

import pytest

from lookalike.errors import InvalidQuery
from lookalike.filters import And, Compare, In, Like, Not, Or, check_fields, matches, parse

TYPES = {"price": {"number"}, "format": {"string"}, "tags": {"list"}, "mtime": {"date"}, "flag": {"boolean"},
         "exif.Model": {"string"}, "width": {"number"}}


def test_grammar_builds_the_expected_tree():
    assert parse('price <= 60') == Compare("price", "<=", 60)
    assert parse("price == 1.5e2") == Compare("price", "=", 150.0)
    assert parse("price > -3") == Compare("price", ">", -3)
    assert parse("flag = TRUE") == Compare("flag", "=", True)
    assert parse("a = 1 or b = 2 and c = 3") == Or((Compare("a", "=", 1), And((Compare("b", "=", 2), Compare("c", "=", 3)))))
    assert parse("(a = 1 or b = 2) and not c = 3") == And((Or((Compare("a", "=", 1), Compare("b", "=", 2))),
                                                           Not(Compare("c", "=", 3))))
    assert parse("format in ['jpeg', \"png\"]") == In("format", ("jpeg", "png"))
    assert parse("format not in ['gif']") == In("format", ("gif",), negate=True)
    assert parse('name like "IMG_0%"') == Like("name", "IMG_0")
    assert parse('exif.Model = "X"') == Compare("exif.Model", "=", "X")
    assert parse(r'name = "say \"hi\"\\"') == Compare("name", "=", 'say "hi"\\')
    assert parse(r"name = 'it\'s'") == Compare("name", "=", "it's")
    assert parse("not not a = 1 AND b != 'x'") == And((Not(Not(Compare("a", "=", 1))), Compare("b", "!=", "x")))


@pytest.mark.parametrize("text, message, position", [
    ("price > )", "expected a value (string, number, true or false), got ')' at column 9", 8),
    ("(price > 1))", "unexpected ')' at column 12", 11),
    ("(price > 1", "expected ')', got end of expression at column 11", 10),
    ('format = "jpeg', "unterminated string at column 10", 9),
    ("price ~ 3", "unexpected '~' at column 7", 6),
    ("price 3", "expected an operator (= != < <= > >= in like) after 'price', got '3' at column 7", 6),
    ("and price = 1", "expected a field name (quote-free; keywords are reserved), got 'and' at column 1", 0),
    ("format in []", "empty list at column 12", 11),
    ("format in ['a' 'b']", "expected ',' or ']', got 'b' at column 16", 15),
    ("format not like 'a%'", "expected 'in' after 'not', got 'like' at column 12", 11),
    ('name like "a%b"', 'like takes a prefix pattern: "text%" (one % at the end, no other wildcards) at column 11', 10),
    ('name like "abc"', "like takes a prefix pattern", 10),
    ("", "empty expression", 0),
    ("   ", "empty expression", 0),
])
def test_syntax_errors_name_the_token_and_column(text, message, position):
    with pytest.raises(InvalidQuery) as e:
        parse(text)
    assert message in str(e.value) and str(e.value).startswith("where: ")
    assert e.value.position == position and "\n" not in str(e.value)


@pytest.mark.parametrize("text, message, position", [
    ("prise <= 60", "unknown field 'prise' at column 1 (known: exif.Model, flag, format, mtime, price, tags, width); "
                    "did you mean 'price'?", 0),
    ('price = "abc"', "'price' is a number, got string \"abc\" at column 9", 8),
    ("format = 3", "'format' is a string, got number 3 at column 10", 9),
    ("flag < true", "'flag' is a boolean: operator '<' does not apply (use = != in) at column 8", 7),
    ('tags < "x"', "'tags' is a list: operator '<' does not apply (use = != in) at column 8", 7),
    ('mtime >= "last week"', "'mtime' is a date: compare it with an ISO 8601 string", 9),
    ("price like 'a%'", "'price' is a number: like applies to strings and dates at column 12", 11),
    ("format in ['jpeg', 2]", "'format' is a string, got number 2 at column 20", 19),
])
def test_fields_and_types_are_checked_against_the_library(text, message, position):
    with pytest.raises(InvalidQuery) as e:
        parse(text, TYPES)
    assert message in str(e.value), str(e.value)
    assert e.value.position == position


def test_valid_typed_expressions_pass():
    for text in ('mtime >= "2024-05-01"', 'mtime < "2024-05-01T12:30:00"', 'mtime like "2024-05%"', 'tags = "cat"',
                 'tags in ["cat", "dog"]', "flag != false", "price in [1, 2.5]", 'format like "jp%"'):
        parse(text, TYPES)
    with pytest.raises(InvalidQuery, match="none: no image has fields yet"):
        parse("price = 1", {})


def test_hostile_input_is_a_clean_error():
    with pytest.raises(InvalidQuery, match="nested deeper"):
        parse("(" * 2000 + "a = 1" + ")" * 2000)
    with pytest.raises(InvalidQuery, match="longer than"):
        parse("a = 1 or " * 5000 + "a = 1")


RECORD = {"price": 50, "format": "jpeg", "tags": ["cat", "tabby"], "flag": True, "mtime": "2024-05-01T10:00:00",
          "name": "IMG_001.jpg", "ratio": 1.5}


@pytest.mark.parametrize("text, expected", [
    ("price <= 60", True), ("price < 50", False), ("price = 50.0", True), ("ratio > 1", True),
    ('tags = "cat"', True), ('tags = "dog"', False), ('tags != "dog"', True), ('tags != "cat"', False),
    ('tags in ["dog", "tabby"]', True), ('tags not in ["dog", "tabby"]', False), ('tags not in ["dog"]', True),
    ('name like "IMG_%"', True), ('name like "IMGX%"', False), ('name like "img%"', False),  # case-sensitive
    ("flag = true", True), ("flag != true", False), ("flag = 1", False),  # a boolean is not a number
    ('price = "50"', False), ('format > 3', False),  # other types never compare
    ('mtime >= "2024-05-01"', True), ('mtime < "2024-05-01"', False),
    ("missing = 1", False), ("missing != 1", False), ("not missing = 1", True), ("missing not in [1]", False),
    ('(price > 60 or format = "jpeg") and not flag = false', True),
])
def test_reference_semantics(text, expected):
    assert matches(parse(text), RECORD) is expected


def test_record_fields_are_validated():
    assert check_fields(RECORD) == {"price": "number", "format": "string", "tags": "list", "flag": "boolean",
                                    "mtime": "date", "name": "string", "ratio": "number"}
    with pytest.raises(InvalidQuery, match=r"/a.jpg: field 'gps' has a dict value"):
        check_fields({"gps": {"lat": 1}}, "/a.jpg")
    with pytest.raises(InvalidQuery, match="field 'n' has a float value nan"):
        check_fields({"n": float("nan")})
    with pytest.raises(InvalidQuery, match="field name 'two words' is not usable"):
        check_fields({"two words": 1})
    with pytest.raises(InvalidQuery, match="field 'mixed' has a list value"):
        check_fields({"mixed": ["a", 1]})
