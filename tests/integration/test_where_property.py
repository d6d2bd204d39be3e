"""Property: any `where` expression over any typed records selects the same images on the
embedded store, on Milvus Lite and in the Python reference evaluator (`matches`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lookalike.filters import And, Compare, In, Like, Not, Or, matches, to_sql
from lookalike.filters.parser import parse
from lookalike.store import ImageRecord, SearchFilter, Upsert, open_store

DIM = 8
# Small alphabets so that equalities and prefixes hit; quotes, backslashes and LIKE wildcards included.
TEXT = st.text(alphabet='ab_%"\\', max_size=3)
WORDS = st.sampled_from(["cat", "dog", "a_b", 'q"x'])
DATES = st.sampled_from(["2023-12-31", "2024-01-01T00:00:00", "2024-05-01T10:30:00", "2024-05-02"])
NUMBERS = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.25, 2.5]))

FIELDS = {"n": NUMBERS, "s": TEXT, "b": st.booleans(), "d": DATES, "t": st.lists(WORDS, max_size=3, unique=True)}
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def _record_fields():
    # Every field may be missing: a missing field is where backends' logic differs most.
    return st.fixed_dictionaries({}, optional=FIELDS)


def _atom():
    return st.one_of(
        st.builds(Compare, st.just("n"), OPS, NUMBERS),
        st.builds(Compare, st.just("s"), OPS, TEXT),
        st.builds(Compare, st.just("d"), OPS, DATES),
        st.builds(Compare, st.just("b"), st.sampled_from(["=", "!="]), st.booleans()),
        st.builds(Compare, st.just("t"), st.sampled_from(["=", "!="]), WORDS),
        st.builds(In, st.just("n"), st.lists(NUMBERS, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(In, st.just("t"), st.lists(WORDS, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(In, st.just("s"), st.lists(TEXT, min_size=1, max_size=2).map(tuple), st.booleans()),
        st.builds(Like, st.sampled_from(["s", "d"]), st.one_of(TEXT, st.sampled_from(["2024-05", "2024"]))),
    )


EXPRS = st.recursive(_atom(), lambda inner: st.one_of(
    st.builds(Not, inner),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
), max_leaves=6)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("where-prop")
    out = [open_store(None, root / "lib"), open_store(f"milvus:{root / 'lib.db'}", root / "lib")]
    for s in out:
        s.set_meta({"model": "effnet-lite0", "dim": str(DIM)})
    yield out
    for s in out:
        s.close()


def _load(store, fields: list[dict]) -> list[int]:
    """Replace the store's contents with one record per fields dict (ids 1..n)."""
    old = [r.id for r in store.iter_records()]
    rng = np.random.default_rng(len(fields))
    vecs = rng.normal(size=(len(fields), DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ups = [Upsert(ImageRecord(f"/p/{i}.jpg", f"{i:064x}", 1, 0.0, 1, 1, fields=f, id=i + 1), v)
           for i, (f, v) in enumerate(zip(fields, vecs))]
    store.write(removes=old)
    return store.write(ups)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                    HealthCheck.too_slow])
@given(records=st.lists(_record_fields(), min_size=1, max_size=12), exprs=st.lists(EXPRS, min_size=1, max_size=6))
def test_backends_agree_with_the_reference(stores, records, exprs):
    for s in stores:
        assert _load(s, records) == list(range(1, len(records) + 1))
    for expr in exprs:
        want = [i + 1 for i, f in enumerate(records) if matches(expr, f)]
        where = SearchFilter(expr=expr)
        for s in stores:
            assert [r.id for r in s.iter_records(where=where)] == want, (type(s).__name__, expr, to_sql(expr))
        q = np.ones((1, DIM), np.float32) / np.sqrt(DIM)
        for s in stores:
            assert sorted(i for i, _ in s.search(q, len(records), where)[0]) == want, (type(s).__name__, expr)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet='abn=!<>()[],"\' .-_%0123456789andortuefsi', max_size=40))
def test_parser_never_crashes(text):
    """Any input parses or raises InvalidQuery with a position inside the text."""
    from lookalike.errors import InvalidQuery

    try:
        parse(text)
    except InvalidQuery as e:
        assert e.position is not None and 0 <= e.position <= len(text)
