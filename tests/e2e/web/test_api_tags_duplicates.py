"""Search by tag, filters and duplicates over HTTP, through a real server; expected answers
come from the engine (`Library.search_text`, `Library.search(..., text=)`, `Library.duplicates`)."""

from __future__ import annotations

import os

from lookalike.engine.duplicates import DuplicateThresholds
from lookalike.store import SearchFilter
from tests.support.web import jpeg, upload


def ids_scores(results) -> list[tuple[int, float]]:
    return [(h["id"], h["score"]) for h in results]


def test_search_by_tag_matches_the_engine(client, lib, gallery):
    for text in ("espresso", "cup, coffee mug", "cat"):
        expected = lib.search_text(text, k=7)
        assert expected, f"the gallery has images tagged {text!r}"
        r = client.get("/api/search", params={"q": text, "k": 7})
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["query"] == text and list(data) == ["query", "model", "took_ms", "crop", "verdict", "good_match", "results"]
        assert ids_scores(data["results"]) == [(h.id, h.score) for h in expected]
        scores = [h["score"] for h in data["results"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= 1
    # a folder filter and a confidence floor, as in the CLI
    coffee_dir = os.path.dirname(str(gallery.groups["coffee"][0]))
    r = client.get("/api/search", params={"q": "espresso", "under": coffee_dir, "min_score": 0.2})
    expected = lib.search_text("espresso", k=10, min_score=0.2, where=SearchFilter(path_prefix=coffee_dir + "/"))
    assert ids_scores(r.json()["results"]) == [(h.id, h.score) for h in expected]


def test_unknown_text_is_422_like_the_cli(client, gallery):
    for r in (client.get("/api/search", params={"q": "zzzqqq"}),
              upload(client, gallery.groups["coffee"][0].read_bytes(), q="zzzqqq"),
              client.post("/api/search", json={"id": 1, "text": "zzzqqq"})):
        assert r.status_code == 422
        assert r.json()["detail"] == "'zzzqqq' is not a word Lookalike can search for; see `lookalike tags` for every searchable word"
    r = client.get("/api/search")
    assert r.status_code == 422 and r.json()["detail"].startswith("query q:")


def test_image_search_with_tag_folder_and_date_filters(client, lib, gallery, photos):
    query = jpeg(photos["coffee"].rotate(8))
    expected = lib.search(query, k=6, text="espresso")
    got = upload(client, query, k=6, q="espresso")
    assert got.status_code == 200, got.text
    assert ids_scores(got.json()["results"]) == [(h.id, h.score) for h in expected]
    # the same filter as a form field, and by id in JSON
    form = client.post("/api/search", files={"file": ("q.jpg", query, "image/jpeg")}, data={"text": "espresso", "k": "6"})
    assert ids_scores(form.json()["results"]) == [(h.id, h.score) for h in expected]
    first = expected[0].id
    by_id = client.post("/api/search", json={"id": first, "k": 5, "q": "cat"}).json()["results"]
    assert ids_scores(by_id) == [(h.id, h.score) for h in lib.search(first, k=5, text="cat")]
    # folder: everything comes from under it
    folder = os.path.dirname(str(gallery.groups["rocket"][0]))
    under = upload(client, query, k=50, under=folder).json()["results"]
    assert under and all(h["path"].startswith(folder + "/") for h in under)
    assert ids_scores(under) == [(h.id, h.score) for h in lib.search(query, k=50, where=SearchFilter(path_prefix=folder + "/"))]
    # dates: every file is older than tomorrow, none is from the year 2000
    assert len(upload(client, query, k=5, until="2999-01-01").json()["results"]) == 5
    assert upload(client, query, k=5, until="2000-01-01").json()["results"] == []
    assert upload(client, query, k=5, since="2000-01-01T00:00").json()["results"] != []
    bad = upload(client, query, since="last tuesday")
    assert bad.status_code == 422 and bad.json()["detail"].startswith("since must be a date")


def test_duplicates_endpoint_is_the_engine_report(client, lib):
    expected = lib.duplicates().to_dict()
    r = client.get("/api/duplicates")
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["images"] == expected["images"] == len(lib) and data["counts"] == expected["counts"]
    assert data["thresholds"] == expected["thresholds"]
    assert [(g["tier"], [m["id"] for m in g["members"]]) for g in data["groups"]] == \
           [(g["tier"], [m["id"] for m in g["members"]]) for g in expected["groups"]]
    assert expected["counts"]["near"] > 0  # the gallery's edits are near-duplicates
    member = data["groups"][0]["members"][0]
    assert member["thumb_url"].startswith(f"/api/images/{member['id']}/thumb")
    assert client.get(member["thumb_url"]).status_code == 200
    # tiers and thresholds as query parameters
    only_near = client.get("/api/duplicates", params={"tier": "near", "near_cosine": 0.9}).json()
    engine = lib.duplicates(DuplicateThresholds(near_cosine=0.9), ["near"]).to_dict()
    assert [[m["id"] for m in g["members"]] for g in only_near["groups"]] == [[m["id"] for m in g["members"]] for g in engine["groups"]]
    assert {g["tier"] for g in only_near["groups"]} <= {"near"}
    for params, phrase in (({"tier": "bogus"}, "tier 'bogus' is not one of exact, near, similar"),
                           ({"near_cosine": 2}, "query near_cosine:"), ({"neighbours": 0}, "query neighbours:")):
        bad = client.get("/api/duplicates", params=params)
        assert bad.status_code == 422 and bad.json()["detail"].startswith(phrase)
