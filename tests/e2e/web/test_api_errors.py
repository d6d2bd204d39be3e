"""Statuses come from error types (api/errors.py), through a real server over a real library:
the engine's validation answers 422/404/415, never 500, and the message is the CLI's."""

from __future__ import annotations

import pytest

from lookalike.api.errors import status_for
from lookalike.errors import Busy, ImageLoadError, InvalidQuery, LookalikeError, NotFound, ReadOnly, TooLarge, Unsupported


@pytest.mark.parametrize("params", [{"q": "cat", "until": "9999-12-31"}, {"q": "cat", "since": "0001-01-01"},
                                    {"q": "cat", "since": "yesterday"}])
def test_extreme_and_bad_dates_never_500(client, params):
    r = client.get("/api/search", params=params)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert "must be a date" in r.json()["detail"]


def test_unknown_label_is_422_with_the_cli_message(client):
    r = client.get("/api/search", params={"q": "qwxzv"})
    assert r.status_code == 422 and r.json()["detail"].startswith("'qwxzv' is not a word Lookalike can search for")


def test_unknown_id_is_404_with_one_message(client):
    for r in (client.get("/api/images/987654"), client.get("/api/images/987654/similar"),
              client.post("/api/search", json={"id": 987654})):
        assert r.status_code == 404 and r.json()["detail"] == "no image with id 987654 in this library", r.text


@pytest.mark.parametrize("body, params, needle", [({"id": 1, "crop": [0, 0, 2, 1]}, {}, "crop box"),
                                                  ({"id": 1}, {"crop": "nan,0,1,1"}, "crop must be")])
def test_engine_validation_is_422(client, body, params, needle):
    r = client.post("/api/search", json=body, params=params)
    assert r.status_code == 422 and needle in r.json()["detail"], r.text


@pytest.mark.parametrize("field, value", [("min_score", "nan"), ("min_score", "inf"), ("k", "0"), ("k", "2.5")])
def test_form_fields_are_checked_by_the_engine(client, field, value):
    r = client.post("/api/search", files={"file": ("x.jpg", b"\xff\xd8 broken", "image/jpeg")}, data={field: value})
    assert r.status_code == 422 and r.json()["detail"].startswith(field), r.text


def test_unknown_tier_is_422(client):
    r = client.get("/api/duplicates", params={"tier": "nope"})
    assert r.status_code == 422 and "'nope' is not one of" in r.json()["detail"]


def test_get_search_has_no_ef():
    from lookalike.api.routes import search_by_tag

    assert "ef" not in search_by_tag.__code__.co_varnames[: search_by_tag.__code__.co_argcount]


def test_status_table_is_by_type_not_message():
    assert status_for(InvalidQuery("x")) == 422 and status_for(NotFound("x")) == 404
    assert status_for(TooLarge("x")) == 413 and status_for(Unsupported("x")) == 415
    assert status_for(Busy("x")) == 503 and status_for(ReadOnly("x")) == 503 and status_for(LookalikeError("x")) == 400
    # ImageLoadError: the kind decides, whatever the reason text says.
    assert status_for(ImageLoadError("a", "not an image (text)")) == 422
    assert status_for(ImageLoadError("a", "anything", kind="unsupported")) == 415
    assert status_for(ImageLoadError("a", "anything", kind="too_large")) == 413
    assert status_for(ImageLoadError("a", "anything", kind="unreachable")) == 400
