"""POST /api/search with several query images, each positive or negative: JSON ids / not_ids /
weights, multipart `file` + `not_file` parts (and ids fields), validation as 422 one-liners."""

from __future__ import annotations

from tests.support.web import jpeg


def _ids(lib, gallery, name: str) -> list[int]:
    return [lib.find_path(p).id for p in gallery.groups[name]]


def _paths(r) -> list[str]:
    assert r.status_code == 200, r.text
    return [h["path"] for h in r.json()["results"]]


def test_json_ids_find_the_family_and_never_themselves(client, lib, gallery):
    rocket = _ids(lib, gallery, "rocket")
    r = client.post("/api/search", json={"ids": rocket[:2], "k": 4})
    paths = _paths(r)
    assert set(paths) <= gallery.family("rocket") and len(paths) == 4
    assert not {lib.find_path(p).id for p in paths} & set(rocket[:2])
    assert r.json()["query"] == f"id:{rocket[0]} + id:{rocket[1]}"
    # The single-id form still answers the same way as before.
    one = client.post("/api/search", json={"id": rocket[0], "k": 3})
    assert set(_paths(one)) <= gallery.family("rocket")


def test_not_ids_push_the_negative_example_down(client, lib, gallery):
    coffee, cat = _ids(lib, gallery, "coffee"), _ids(lib, gallery, "chelsea")
    plain = client.post("/api/search", json={"ids": [coffee[0]], "k": 100}).json()["results"]
    negative = client.post("/api/search", json={"ids": [coffee[0]], "not_ids": [cat[0]], "k": 100}).json()["results"]
    rank = {h["id"]: h["rank"] for h in plain}
    rank_neg = {h["id"]: h["rank"] for h in negative}
    assert cat[0] not in rank_neg  # a query image (negative or not) never comes back
    # Every other edit of the cat ranks lower (or drops out) once the cat is a negative example.
    moved = [rank_neg.get(i, 10**6) - rank[i] for i in cat[1:] if i in rank]
    assert moved and all(m >= 0 for m in moved) and sum(moved) > 0, moved


def test_weights_choose_which_example_dominates(client, lib, gallery):
    rocket, moon = _ids(lib, gallery, "rocket"), _ids(lib, gallery, "moon")
    heavy_rocket = _paths(client.post("/api/search", json={"ids": [rocket[0], moon[0]], "weights": [9, 1], "k": 3}))
    heavy_moon = _paths(client.post("/api/search", json={"ids": [rocket[0], moon[0]], "weights": [1, 9], "k": 3}))
    assert set(heavy_rocket) <= gallery.family("rocket")
    assert set(heavy_moon) <= gallery.family("moon")


def test_multipart_several_files_and_not_file(client, lib, gallery, photos):
    files = [("file", ("a.jpg", jpeg(photos["rocket"]), "image/jpeg")),
             ("file", ("b.jpg", jpeg(photos["rocket"].rotate(3)), "image/jpeg")),
             ("not_file", ("c.jpg", jpeg(photos["moon"]), "image/jpeg"))]
    r = client.post("/api/search", params={"k": 3}, files=files)
    assert set(_paths(r)) <= gallery.family("rocket")
    assert r.json()["query"] == "a.jpg + b.jpg - c.jpg"
    # Uploads and ids mix: the files first, then the ids, weighted in that order.
    moon = _ids(lib, gallery, "moon")
    r = client.post("/api/search", files=[files[0]], data={"ids": f"{moon[0]}", "weights": "1,9", "k": "3"})
    assert set(_paths(r)) <= gallery.family("moon")


def test_several_images_bad_input_is_one_422_line(client, lib, gallery, photos):
    rocket = _ids(lib, gallery, "rocket")
    good = jpeg(photos["rocket"])
    cases = [
        (client.post("/api/search", json={"ids": []}), 422, '"ids" is empty'),
        (client.post("/api/search", json={"ids": rocket[:2], "weights": [1]}), 422, "1 weights for 2 query images"),
        (client.post("/api/search", json={"ids": rocket[:2], "weights": [1, -2]}), 422, "weights must be positive"),
        (client.post("/api/search", json={"id": rocket[0], "weights": [1]}), 422, '"weights" go with "ids"'),
        (client.post("/api/search", json={"ids": rocket[:2], "weights": [1, 1e300]}), 422, "positive numbers up to 1e+06"),
        (client.post("/api/search", content=b'{"ids": [\xdf]}', headers={"Content-Type": "application/json"}), 422,
         "body is not valid JSON (not UTF-8 text)"),
        (client.post("/api/search", json={"ids": ["/etc/passwd"]}), 422, "'/etc/passwd' is not an image id"),
        (client.post("/api/search", json={"ids": [rocket[0]], "not_ids": ["http://x/y.jpg"]}), 422, "'http://x/y.jpg' is not"),
        (client.post("/api/search", json={"ids": list(range(21))}), 422, "at most 20 query images"),
        (client.post("/api/search", json={"ids": rocket[:2], "crop": [0, 0, 0.5, 0.5]}), 422, "crop takes one query image"),
        (client.post("/api/search", json={"ids": [999999]}), 404, "no image with id 999999"),
        (client.post("/api/search", json={"ids": ["item:nope"]}), 404, "no item 'nope'"),
        (client.post("/api/search", files=[("not_file", ("c.jpg", good, "image/jpeg"))]), 422, "multipart body has no file"),
        (client.post("/api/search", files=[("file", ("a.jpg", good, "image/jpeg")), ("other", ("b.jpg", good, "image/jpeg"))]),
         422, "multipart field 'other' is not a query field"),
        (client.post("/api/search", files=[("file", ("a.jpg", good, "image/jpeg"))], data={"ids": "1,x"}), 422, "ids: 'x' is not"),
        (client.post("/api/search", files=[("file", ("a.jpg", good, "image/jpeg"))], data={"weights": "heavy"}), 422,
         "weights must be comma-separated numbers"),
        (client.post("/api/search", files=[("file", ("a.jpg", good, "image/jpeg")), ("file", ("b.jpg", b"not an image", "image/jpeg"))]),
         415, "b.jpg: not an image"),
    ]
    for r, status, message in cases:
        assert r.status_code == status, (message, r.text)
        detail = r.json()["detail"]
        assert message in detail and "\n" not in detail, (message, detail)


def test_openapi_documents_several_images(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert {"file", "not_file", "ids", "not_ids", "weights"} <= set(body["multipart/form-data"]["schema"]["properties"])
    assert {"ids", "not_ids", "weights"} <= set(body["application/json"]["schema"]["properties"])
