"""The catalogue REST endpoints on a real uvicorn server: items by id, similar items with
filters, writes behind the API key, and CORS only for configured shop origins."""

from __future__ import annotations

import csv
import shutil

import httpx
import pytest

from lookalike import Library
from lookalike.api import create_app
from tests.support.server import BackgroundServer

KEY = "catalogue-test-key"
SHOP = "http://shop.example:8080"


@pytest.fixture(scope="module")
def shop_library(tmp_path_factory, products):
    root = tmp_path_factory.mktemp("api-shop")
    with open(root / "p.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image", "category", "price", "name"])
        writer.writerows([[p["sku"], str(p["file"]), p["category"], p["price"], f"{p['category']} {p['sku']}"] for p in products])
    with Library.open(root / "lib") as lib:
        assert lib.import_items(root / "p.csv", "sku", ["image"]).added == len(products)
    return root / "lib"


@pytest.fixture()
def api(tmp_path, shop_library):
    shutil.copytree(shop_library, tmp_path / "lib")
    # URL images through the server's fetcher: public addresses only, plus the test's loopback server.
    app = create_app(tmp_path / "lib", api_key=KEY, cors_origins=[SHOP], url_queries=True, url_allow=["127.0.0.1/32"])
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def test_read_and_similar(api, products):
    sku = products[0]["sku"]
    item = api.get(f"/api/items/{sku}").json()
    assert item["item"] == sku and item["fields"]["category"] == products[0]["category"]
    assert item["fields"]["price"] == products[0]["price"] and item["image_url"] == f"/api/items/{sku}/image"
    image = api.get(item["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    # The web page's image routes serve items too (their listed file or downloaded copy).
    assert api.get(f"/api/images/{item['id']}/thumb").status_code == 200
    original = api.get(f"/api/images/{item['id']}/file")
    assert original.status_code == 200 and original.content == products[0]["file"].read_bytes()
    similar = api.get(f"/api/items/{sku}/similar", params={"k": 5, "where": "price >= 20"}).json()
    assert len(similar["results"]) == 5 and sku not in [r["item"] for r in similar["results"]]
    assert all(r["fields"]["price"] >= 20 for r in similar["results"])
    search = api.post("/api/search", json={"id": item["id"], "k": 3, "where": 'category = "bag"'})
    assert search.status_code == 200, search.text
    hits = search.json()["results"]
    assert len(hits) == 3 and all(h["item"] and h["fields"]["category"] == "bag" for h in hits)
    assert all(api.get(h["thumb_url"]).status_code == 200 for h in hits)  # an item's image, not a file path
    page = api.get("/api/items", params={"where": 'category = "bag"', "limit": 100}).json()
    assert sorted(i["item"] for i in page["items"]) == sorted(p["sku"] for p in products if p["category"] == "bag")


@pytest.mark.parametrize("url, status, needle", [
    ("/api/items/NOPE", 404, "no item 'NOPE'"),
    ("/api/items/NOPE/similar", 404, "no item 'NOPE'"),
    ("/api/items/SKU-000/similar?where=price%20%3C%3D", 422, "where:"),
    ("/api/items/SKU-000/similar?colour=blue", 422, "colour must be"),
    ("/api/items/SKU-000/similar?k=0", 422, "k"),
])
def test_read_errors_are_one_line(api, url, status, needle):
    r = api.get(url)
    assert r.status_code == status and needle in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_writes_need_the_key_and_keep_vectors(api, products, photo_files, image_server):
    assert api.put("/api/items/NEW-1", json={"fields": {}}).status_code == 401
    headers = {"X-API-Key": KEY}
    jpeg = photo_files["coffee"].read_bytes()
    files = {"file": ("coffee.jpg", jpeg, "image/jpeg")}
    created = api.put("/api/items/NEW-1", files=files, data={"fields": '{"name": "Mug", "price": 12.5, "tags": ["kitchen"]}'},
                      headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["fields"] == {"name": "Mug", "price": 12.5, "tags": ["kitchen"], "item": "NEW-1"}
    record_id = created.json()["id"]
    again = api.put("/api/items/NEW-1", files=files, data={"fields": '{"name": "Mug 2"}'}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == record_id and again.json()["fields"]["name"] == "Mug 2"
    shutil.copy(photo_files["rocket"], image_server.directory / "rocket.jpg")
    by_url = api.put("/api/items/NEW-2", json={"image": f"{image_server.base}/rocket.jpg", "fields": {"name": "Rocket"}},
                     headers=headers)
    assert by_url.status_code == 201, by_url.text
    assert api.get("/api/items/NEW-2/image").status_code == 200  # served from the download cache
    patched = api.patch("/api/items/NEW-1", json={"price": 9.99, "tags": None}, headers=headers)
    assert patched.status_code == 200 and patched.json()["fields"] == {"name": "Mug 2", "price": 9.99, "item": "NEW-1"}
    nearest = api.get("/api/items/NEW-1/similar", params={"k": 1, "where": 'name = "Rocket"'}).json()["results"]
    assert [r["item"] for r in nearest] == ["NEW-2"]
    bad = api.patch("/api/items/NEW-1", json={"dims": {"w": 1}}, headers=headers)
    assert bad.status_code == 422 and "field 'dims'" in bad.json()["detail"]
    broken = api.put("/api/items/NEW-3", files={"file": ("x.jpg", b"\xff\xd8 broken", "image/jpeg")}, headers=headers)
    assert broken.status_code in (415, 422) and "\n" not in broken.json()["detail"]
    assert api.delete("/api/items/NEW-1", headers=headers).status_code == 200
    assert api.get("/api/items/NEW-1").status_code == 404
    assert api.delete("/api/items/NEW-1", headers=headers).status_code == 404


def test_cors_only_for_configured_origins(api, tmp_path, shop_library, products):
    sku = products[0]["sku"]
    allowed = api.get(f"/api/items/{sku}/similar", headers={"Origin": SHOP})
    assert allowed.headers.get("access-control-allow-origin") == SHOP
    other = api.get(f"/api/items/{sku}/similar", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    with BackgroundServer(create_app(shop_library, api_key=KEY)) as url:
        default = httpx.get(f"{url}/api/items/{sku}/similar", headers={"Origin": SHOP}, timeout=60)
        no_urls = httpx.put(f"{url}/api/items/X", json={"image": "http://127.0.0.1:9/x.jpg"}, headers={"X-API-Key": KEY}, timeout=60)
    assert default.status_code == 200 and "access-control-allow-origin" not in default.headers
    assert no_urls.status_code == 403 and "upload the image" in no_urls.json()["detail"]  # URL fetching is off by default
