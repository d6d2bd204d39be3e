"""The REST API through a real uvicorn server on 127.0.0.1: real photos, the real model, the
real library. Expected answers come from the engine itself (`Library`), never hard-coded."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image, ImageOps

from lookalike import Library, LookalikeError
from lookalike.api import create_app
from lookalike.imaging import crop_relative
from tests.support.server import BackgroundServer
from tests.support.web import jpeg, upload

HIT_KEYS = ["rank", "id", "path", "score", "confidence", "name", "fields", "item", "thumb_url", "image_url"]


@pytest.fixture(scope="module")
def writable(gallery, tmp_path_factory):
    """A copy of the gallery library behind a server with an API key and a 2 MB upload limit."""
    copy = tmp_path_factory.mktemp("writable") / "lib"
    shutil.copytree(gallery.library, copy)
    app = create_app(copy, api_key="s3cret", max_upload_bytes=2_000_000)
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=120) as c:
        yield c, copy


def test_upload_search_finds_the_photo_and_matches_the_engine(client, lib, gallery, photos):
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        query = ImageOps.grayscale(photos[name]).convert("RGB")  # an edit the gallery does not hold
        r = upload(client, jpeg(query), f"{name}-grey.jpg", k=5)
        assert r.status_code == 200, r.text
        data = r.json()
        assert list(data) == ["query", "model", "took_ms", "crop", "verdict", "good_match", "results"]
        assert data["query"] == f"{name}-grey.jpg" and data["model"] == lib.model and data["took_ms"] > 0
        assert [list(h) for h in data["results"]] == [HIT_KEYS] * 5
        assert data["results"][0]["path"] in gallery.family(name)
        expected = lib.search(jpeg(query), k=5)
        assert [(h["id"], h["score"]) for h in data["results"]] == [(h.id, h.score) for h in expected]
        first = data["results"][0]
        assert first["thumb_url"].startswith(f"/api/images/{first['id']}/thumb")
        assert first["image_url"].startswith(f"/api/images/{first['id']}/file")


def test_exact_copy_scores_one_and_raw_body_works(client, gallery):
    original = gallery.groups["coffee"][0]
    r = client.post("/api/search?k=1", content=original.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    top = r.json()["results"][0]
    assert top["path"] == str(original) and top["score"] >= 0.9999


def test_more_like_this_by_id_json_and_get_agree(client, lib, gallery):
    original = str(gallery.groups["chelsea"][0])
    id_ = next(r.id for r in lib.records() if r.path == original)
    by_json = client.post("/api/search", json={"id": id_, "k": 6}).json()
    by_get = client.get(f"/api/images/{id_}/similar", params={"k": 6}).json()
    expected = [(h.id, h.score) for h in lib.search(id_, k=6)]
    assert by_json["query"] == f"id:{id_}"
    assert [(h["id"], h["score"]) for h in by_json["results"]] == expected
    assert [(h["id"], h["score"]) for h in by_get["results"]] == expected
    assert id_ not in [h["id"] for h in by_json["results"]]  # never finds itself
    assert {h["path"] for h in by_json["results"]} == gallery.family("chelsea") - {original}  # its six edits
    # The ANN knob passes through (this library is small, so search is exact either way).
    with_ef = client.get(f"/api/images/{id_}/similar", params={"k": 6, "ef": 500}).json()
    assert [(h["id"], h["score"]) for h in with_ef["results"]] == expected
    assert client.post("/api/search", params={"ef": 500}, json={"id": id_, "k": 6}).json()["results"] == by_json["results"]
    assert client.get(f"/api/images/{id_}/similar", params={"ef": 0}).status_code == 422


def test_crop_box_searches_only_that_region(client, lib, gallery, photos):
    """Left half a cat, right half coffee: each half, cropped by the API, finds its own photo."""
    left, right = (photos[n].resize((300, 300)) for n in ("chelsea", "coffee"))
    both = Image.new("RGB", (600, 300))
    both.paste(left, (0, 0))
    both.paste(right, (300, 0))
    data = jpeg(both)
    for box, name in (([0, 0, 0.5, 1], "chelsea"), ([0.5, 0, 1, 1], "coffee")):
        r = client.post("/api/search", params={"k": 3, "crop": ",".join(map(str, box))},
                        files={"file": ("both.jpg", data, "image/jpeg")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["crop"] == box and body["results"][0]["path"] in gallery.family(name)
        region = crop_relative(Image.open(io.BytesIO(data)).convert("RGB"), box)
        assert [h["id"] for h in body["results"]] == [h.id for h in lib.search(region, k=3)]
    # The crop also applies to an indexed image ("more like this region"), as a form field or JSON.
    id_ = next(r.id for r in lib.records() if r.path == str(gallery.groups["astronaut"][0]))
    r = client.post("/api/search", json={"id": id_, "k": 3, "crop": [0.25, 0.0, 0.75, 0.5]})
    assert r.status_code == 200, r.text
    assert id_ not in [h["id"] for h in r.json()["results"]] and len(r.json()["results"]) == 3


def test_browse_metadata_file_and_thumbnail(client, lib, gallery):
    seen = []
    for offset in range(0, len(lib) + 40, 40):
        page = client.get("/api/images", params={"offset": offset, "limit": 40}).json()
        assert page["total"] == len(lib) and page["offset"] == offset
        seen += [item["id"] for item in page["items"]]
    assert seen == [r.id for r in lib.records()]  # every image once, in id order

    rec = lib.records(limit=1)[0]
    meta = client.get(f"/api/images/{rec.id}").json()
    assert (meta["path"], meta["sha256"], meta["width"], meta["height"]) == (rec.path, rec.sha256, rec.width, rec.height)
    assert meta["similar_url"] == f"/api/images/{rec.id}/similar"

    f = client.get(meta["image_url"])
    assert f.status_code == 200 and f.headers["content-type"] == "image/jpeg"
    assert f.content == open(rec.path, "rb").read()

    t = client.get(meta["thumb_url"])
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(t.content))
    assert max(thumb.size) == 320 and thumb.size[0] / thumb.size[1] == pytest.approx(rec.width / rec.height, rel=0.02)
    assert (gallery.library / "thumbs" / f"{rec.sha256}-320.jpg").read_bytes() == t.content  # cached on disk
    assert client.get(meta["thumb_url"]).content == t.content


def test_stats_health_and_docs(client, lib):
    stats = client.get("/api/stats").json()
    assert stats["images"] == len(lib) and stats["model"] == lib.model and stats["max_upload_bytes"] == 20_000_000
    assert stats["writes_need_key"] is False
    assert client.get("/healthz").json() == {"status": "ok", "images": len(lib)}
    schema = client.get("/openapi.json").json()
    assert {"/api/search", "/api/images", "/api/images/{image_id}", "/api/images/{image_id}/similar",
            "/api/images/{image_id}/file", "/api/images/{image_id}/thumb", "/api/stats", "/healthz"} <= set(schema["paths"])
    assert {"multipart/form-data", "application/json"} <= set(schema["paths"]["/api/search"]["post"]["requestBody"]["content"])
    page = client.get("/")
    assert page.status_code == 200 and "<title>Lookalike</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200
    docs = client.get("/docs")  # Swagger UI from the installed package, not a CDN
    assert docs.status_code == 200 and "cdn." not in docs.text and "swagger-ui-bundle.js" in docs.text
    asset = next(part.split('"')[0] for part in docs.text.split('src="')[1:] if "swagger-ui-bundle.js" in part)
    assert asset.startswith("/") and client.get(asset).status_code == 200


@pytest.mark.parametrize("path", ["/api/images/999999", "/api/images/999999/file", "/api/images/999999/thumb",
                                  "/api/images/999999/similar"])
def test_unknown_ids_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and r.json() == {"detail": "no image with id 999999 in this library"}


def test_bad_input_gets_clear_json_errors(client, gallery):
    good = gallery.groups["rocket"][0].read_bytes()
    cases = [
        (upload(client, b"just some text, not a picture", "notes.jpg"), 415, "notes.jpg: not an image"),
        (upload(client, good[: len(good) // 3], "cut.jpg"), 422, "cut.jpg: truncated image data"),
        (upload(client, b"", "empty.jpg"), 422, "empty.jpg: empty file"),
        (upload(client, good, k=0), 422, "query k: Input should be greater than or equal to 1"),
        (client.post("/api/search", json={"id": 1, "k": "many"}), 422, "k: Input should be a valid integer"),
        (upload(client, good, crop="0.5,0,0.2,1"), 422, "crop box 0.5,0,0.2,1 must satisfy"),
        (client.post("/api/search", json={"id": 1, "crop": [0, 0, 1.5, 1]}), 422, "crop box 0,0,1.5,1 must satisfy"),
        (client.post("/api/search", json={"id": 2**70}), 422, "id: Input should be less than or equal to"),
        (upload(client, good, crop="left"), 422, "crop must be x0,y0,x1,y1"),
        (client.post("/api/search", json={"id": 1, "url": "http://x"}), 422, 'give exactly one of "id", "ids" or "url"'),
        (client.post("/api/search", content=b"{nope", headers={"Content-Type": "application/json"}), 422, "body is not valid JSON"),
        (client.post("/api/search", content=b"hello", headers={"Content-Type": "text/plain"}), 415, "send the image as multipart"),
        (client.post("/api/search", files={"image": ("q.jpg", good, "image/jpeg")}), 422, "multipart body has no file"),
        (client.get("/api/images", params={"limit": 0}), 422, "query limit:"),
    ]
    for r, status, message in cases:
        assert r.status_code == status, (message, r.text)
        assert r.headers["content-type"] == "application/json" and r.json()["detail"].startswith(message), r.text


def test_url_queries(gallery, tmp_path):
    """Opted in, with the test's own loopback file server allow-listed."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(gallery.root / "photos"))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    app = create_app(gallery.library, url_queries=True, url_allow=["127.0.0.1/32"])
    try:
        with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=120) as client:
            base = f"http://127.0.0.1:{files.server_address[1]}"
            r = client.post("/api/search", json={"url": f"{base}/moon.jpg", "k": 1})
            assert r.status_code == 200, r.text
            assert r.json()["results"][0]["path"] == str(gallery.groups["moon"][0])
            missing = client.post("/api/search", json={"url": f"{base}/nope.jpg"})
            assert missing.status_code == 400 and missing.json()["detail"] == "could not fetch the URL"  # no status leaked
    finally:
        files.shutdown()


def test_32_parallel_searches_all_correct(client, lib, gallery, photos):
    names = sorted(gallery.groups)
    ids = {r.path: r.id for r in lib.records()}
    jobs = []
    for i in range(32):
        name = names[i % len(names)]
        if i % 2:  # more like this, by id
            jobs.append(("id", ids[str(gallery.groups[name][i % 7])], name))
        else:  # an upload that needs the model: a mirrored, re-encoded photo
            jobs.append(("upload", jpeg(ImageOps.mirror(photos[name]).resize((200, 200)), 70 + i % 20), name))
    expected = [[(h.id, h.score) for h in lib.search(q, k=5)] for _, q, _ in jobs]  # one at a time, in-process

    def run(job):
        kind, q, _ = job
        r = client.post("/api/search?k=5", json={"id": q}) if kind == "id" else upload(client, q, k=5)
        assert r.status_code == 200, r.text
        return [(h["id"], h["score"]) for h in r.json()["results"]]

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(run, jobs))
    assert answers == expected
    for (kind, _, name), answer in zip(jobs, answers):
        top = lib.get(answer[0][0]).path
        assert gallery.photo_of(top) == name, (kind, name, top)


def test_write_endpoints_need_the_key_and_keep_uploads(writable, photos):
    client, copy = writable
    data = jpeg(ImageOps.mirror(photos["coins"]))
    files = {"file": ("coins-mirror.jpg", data, "image/jpeg")}
    assert client.post("/api/images", files=files).status_code == 401
    assert client.post("/api/images", files=files, headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.get("/api/stats").json()["writes_need_key"] is True
    before = client.get("/healthz").json()["images"]

    key = {"X-API-Key": "s3cret"}
    r = client.post("/api/images", files=files, headers=key)
    assert r.status_code == 201, r.text
    meta = r.json()
    stored = copy / "uploads" / f"{hashlib.sha256(data).hexdigest()}.jpg"
    assert meta["path"] == str(stored) and stored.read_bytes() == data
    assert client.get("/healthz").json()["images"] == before + 1
    again = client.post("/api/images", files=files, headers=key)
    assert again.status_code == 200 and again.json()["id"] == meta["id"]  # same content: same record

    hit = upload(client, data, k=1).json()["results"][0]
    assert hit["id"] == meta["id"] and hit["score"] >= 0.9999

    refused = client.post("/api/images", files={"file": ("x.jpg", b"plain text", "image/jpeg")}, headers=key)
    assert refused.status_code == 415 and sorted(p.name for p in (copy / "uploads").iterdir()) == [stored.name]

    assert client.delete(f"/api/images/{meta['id']}").status_code == 401
    gone = client.delete(f"/api/images/{meta['id']}", headers=key)
    assert gone.status_code == 200 and gone.json() == {"deleted": meta["id"], "file_removed": True}
    assert not stored.exists() and client.get(f"/api/images/{meta['id']}").status_code == 404
    assert client.delete(f"/api/images/{meta['id']}", headers=key).status_code == 404

    # Deleting an indexed image of the user's own forgets it but never touches the file.
    first = client.get("/api/images", params={"limit": 1}).json()["items"][0]
    r = client.delete(f"/api/images/{first['id']}", headers=key)
    assert r.json() == {"deleted": first["id"], "file_removed": False} and os.path.exists(first["path"])


def test_upload_limit_is_enforced_while_reading(writable, gallery):
    client, _ = writable
    big = os.urandom(2_100_000)
    declared = client.post("/api/search", content=big, headers={"Content-Type": "image/jpeg"})
    assert declared.status_code == 413 and declared.json()["detail"] == "request body larger than the upload limit of 2 MB"

    def chunks():  # no Content-Length: the server must count while the body streams in
        for i in range(0, len(big), 64_000):
            yield big[i:i + 64_000]

    streamed = client.post("/api/search", content=chunks(), headers={"Content-Type": "image/jpeg"})
    assert streamed.status_code == 413 and "upload limit" in streamed.json()["detail"]
    small = client.post("/api/search?k=1", content=gallery.groups["moon"][0].read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert small.status_code == 200


def test_empty_library(tmp_path):
    with Library.open(tmp_path / "empty"):
        pass
    with BackgroundServer(create_app(tmp_path / "empty")) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/api/stats").json()["images"] == 0
        assert c.get("/api/images").json() == {"total": 0, "offset": 0, "limit": 50, "items": []}
        img = jpeg(Image.new("RGB", (64, 64), (200, 30, 30)))
        r = upload(c, img)
        assert r.status_code == 200 and r.json()["results"] == []


def test_serve_command_refuses_open_writes_on_a_public_address(gallery):
    env = {k: v for k, v in os.environ.items() if k != "LOOKALIKE_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "lookalike", "serve", "--library", str(gallery.library), "--host", "0.0.0.0"],
                          capture_output=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert b"refusing to serve on 0.0.0.0 without $LOOKALIKE_API_KEY" in proc.stderr and b"Traceback" not in proc.stderr
    with pytest.raises(LookalikeError, match="no library at"):  # serve prints this as its one-line error
        create_app(gallery.root / "nope")


def test_thumbnail_without_a_writable_cache(writable):
    client, copy = writable
    shutil.rmtree(copy / "thumbs", ignore_errors=True)
    (copy / "thumbs").write_text("a file where the cache folder would go")
    try:
        item = client.get("/api/images", params={"limit": 1}).json()["items"][0]
        r = client.get(item["thumb_url"])
        assert r.status_code == 200 and max(Image.open(io.BytesIO(r.content)).size) == 320
    finally:
        (copy / "thumbs").unlink()
