"""`where` over HTTP: the same filter language as the CLI and Python, on every search endpoint,
with results carrying `fields`; a bad expression is one 422 line pointing at the token."""

from __future__ import annotations

from tests.support.web import jpeg, upload


def _names(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [h["fields"]["name"] for h in r.json()["results"]]


def test_upload_search_with_where_keeps_only_matching_fields(client, gallery, photos):
    names = _names(upload(client, jpeg(photos["coffee"]), k=50, where='name like "coffee%"'))
    assert names and all(n.startswith("coffee") for n in names)
    unfiltered = _names(upload(client, jpeg(photos["coffee"]), k=50))
    assert len(unfiltered) > len(names)  # the filter really removed something


def test_similar_and_listing_and_tag_search_take_where(client, lib):
    first = lib.records(0, 1)[0]
    folder = first.fields["folder"]
    r = client.get(f"/api/images/{first.id}/similar", params={"k": 100, "where": f'name != "{first.fields["name"]}"'})
    assert first.fields["name"] not in _names(r)
    r = client.get("/api/images", params={"where": f'folder = "{folder}" and width > 0', "limit": 500})
    assert r.status_code == 200 and r.json()["items"]
    assert {i["fields"]["folder"] for i in r.json()["items"]} == {folder}
    r = client.get("/api/search", params={"q": "cat", "where": 'format = "jpeg"'})
    assert r.status_code == 200 and all(h["fields"]["format"] == "jpeg" for h in r.json()["results"])


def test_json_search_by_id_takes_where(client, lib):
    first = lib.records(0, 1)[0]
    r = client.post("/api/search", json={"id": first.id, "k": 100, "where": "width >= 100000"})
    assert r.status_code == 200 and r.json()["results"] == []


def test_bad_where_is_one_422_line_with_the_column(client, photos):
    r = upload(client, jpeg(photos["coffee"]), where="widht > 3")
    assert r.status_code == 422
    body = r.json()
    assert "unknown field 'widht'" in body["detail"] and "did you mean 'width'" in body["detail"]
    assert body["position"] == 0 and "\n" not in body["detail"]
    r = client.get("/api/images", params={"where": 'width >= "wide"'})
    assert r.status_code == 422 and "width" in r.json()["detail"]
    r = client.get("/api/images", params={"where": "(width > 3"})
    assert r.status_code == 422 and "column" in r.json()["detail"]
