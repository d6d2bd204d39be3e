"""engine/params.py: the one place user input is checked, for the CLI and the API alike."""

from __future__ import annotations

import math

import pytest

from lookalike.engine.params import (
    FIT_SAMPLE,
    TIERS,
    check_ef,
    check_k,
    check_label_text,
    check_score,
    check_tiers,
    fit_sample,
    make_filter,
    no_image,
    parse_crop,
    parse_date,
)
from lookalike.engine.query import resolve
from lookalike.errors import InvalidQuery, NotFound
from lookalike.filters import And, Compare


@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "9999-12-31T23:59", "0001-01-01T00:00"])
def test_extreme_dates_are_a_value_or_an_invalid_query(text):
    for end in (False, True):
        try:
            value = parse_date(text, "--until", end_of_day=end)
        except InvalidQuery as e:
            assert "--until must be a date" in str(e) and "outside the range" in str(e)
        else:
            assert isinstance(value, float) and math.isfinite(value)


def test_dates():
    start, end = parse_date("2024-02-29", "since"), parse_date("2024-02-29", "until", end_of_day=True)
    assert end - start == pytest.approx(86400 - 1e-6, abs=1e-3)
    assert parse_date("", "since") is None and parse_date(None, "since") is None
    for bad in ("2024-02-30", "soon", "2024-13-01T00:00"):
        with pytest.raises(InvalidQuery, match="must be a date"):
            parse_date(bad, "since")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", 1.5, 2, -1.01, "x"])
def test_scores_refuse_non_finite_and_out_of_range(value):
    with pytest.raises(InvalidQuery, match="min_score"):
        check_score(value)


def test_bounds():
    assert check_k("7") == 7 and check_score("0.5") == 0.5 and check_score(None) is None and check_ef(None) is None
    for bad in (0, 1001, "x", 2.5, float("nan")):
        with pytest.raises(InvalidQuery):
            check_k(bad)
    with pytest.raises(InvalidQuery):
        check_ef(5000)


def test_crop():
    assert parse_crop("0,0.25,0.5,1") == (0.0, 0.25, 0.5, 1.0) and parse_crop(None) is None
    for bad in ("0,0,1", "0.5,0,0.5,1", "nan,0,1,1", "0,0,inf,1", [0, 0, 2, 1]):
        with pytest.raises(InvalidQuery):
            parse_crop(bad)
    # A form field sent as a file part, or a bare number, is refused with the field's name.
    for not_a_box in (5, 0.5, object()):
        with pytest.raises(InvalidQuery, match="crop must be x0,y0,x1,y1"):
            parse_crop(not_a_box)


def test_a_boolean_is_not_an_image_id():
    # bool is an int subclass: True must not quietly mean image 1.
    with pytest.raises(InvalidQuery, match="not True"):
        resolve(True, None)  # refused before the store is used


def test_tiers_labels_and_ids():
    assert check_tiers(None) == list(TIERS) and check_tiers(["near"]) == ["near"]
    with pytest.raises(InvalidQuery, match="'dup' is not one of"):
        check_tiers(["dup"])
    assert check_label_text("cat") == "cat"
    with pytest.raises(InvalidQuery, match="is not a word Lookalike can search for"):
        check_label_text("qwxzv")
    assert isinstance(no_image(3), NotFound) and str(no_image(3)) == "no image with id 3 in this library"


def test_filter_and_fit_sample(tmp_path):
    where = make_filter(tmp_path, "2024-01-01", None)
    # Dates compare with each image's `date` field: capture time, else file time (docs/photos.md).
    assert where.path_prefix == str(tmp_path) + "/" and where.expr == Compare("date", ">=", "2024-01-01T00:00:00")
    both = make_filter(None, "2024-01-01T10:30", "2024-01-31")
    assert both.expr == And((Compare("date", ">=", "2024-01-01T10:30:00"), Compare("date", "<=", "2024-01-31T23:59:59.999999")))
    assert make_filter(None, "", "") is None
    with pytest.raises(InvalidQuery):
        make_filter("a\x00b")
    sample = fit_sample(2000)
    assert len(sample) == FIT_SAMPLE == len(set(sample)) and sample == sorted(sample) == fit_sample(2000)
    assert fit_sample(3) == [0, 1, 2]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_year_bounds_in_every_time_zone(zone, monkeypatch):
    import time

    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        for text in ("0001-01-01", "9999-12-31"):
            for end in (False, True):
                try:
                    parse_date(text, "until", end_of_day=end)
                except InvalidQuery as e:
                    assert "outside the range" in str(e)
    finally:
        monkeypatch.undo()
        time.tzset()
