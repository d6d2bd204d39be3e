"""The bad-file corpus (tests/support/badfiles.py) through the HTTP upload endpoints of a real server:
every case gets a 2xx (a fine image) or a 4xx with a one-line JSON message naming the
problem (413/415/422), never a 500; the server stays healthy and keeps answering correctly."""

from __future__ import annotations

import shutil

import httpx
import pytest

from lookalike import Library
from lookalike.api import create_app
from tests.support.badfiles import FAILED, INDEXED, content_cases
from tests.support.server import BackgroundServer

KEY = "k3y"


@pytest.fixture(scope="module")
def server(gallery, tmp_path_factory):
    copy = tmp_path_factory.mktemp("bad-input") / "lib"
    shutil.copytree(gallery.library, copy)
    with BackgroundServer(create_app(copy, api_key=KEY, max_upload_bytes=8_000_000)) as url, \
            httpx.Client(base_url=url, timeout=120) as c:
        yield c, copy


def check(r: httpx.Response, case, ok: set[int]) -> int:
    where = f"{case.kind}: {r.status_code} {r.text[:200]}"
    if case.expect == INDEXED:
        assert r.status_code in ok, where
    else:
        assert case.expect == FAILED
        assert r.status_code in (413, 415, 422), where
        detail = r.json()["detail"]
        assert "\n" not in detail and case.reason in detail.lower(), where
    return r.status_code


def test_corpus_through_search_and_upload(server, photos):
    client, copy = server
    cases = content_cases(photos)
    assert len(cases) >= 40
    seen: dict[str, tuple[int, int]] = {}
    for case in cases:
        name = case.name.rsplit("/", 1)[-1]  # type: ignore[union-attr]
        s = check(client.post("/api/search", params={"k": 3}, files={"file": (name, case.data, "application/octet-stream")}),
                  case, {200})
        u = check(client.post("/api/images", headers={"X-API-Key": KEY}, files={"file": (name, case.data, "image/jpeg")}),
                  case, {200, 201})
        if case.expect == INDEXED:
            assert client.post("/api/search?k=1", content=case.data, headers={"Content-Type": "image/png"}).status_code == 200
        seen[case.kind] = (s, u)
    # not an image body at all, and too big for the server's limit
    assert client.post("/api/search", content=b"hi", headers={"Content-Type": "text/plain"}).status_code == 415
    big = client.post("/api/images", content=b"\xff" * 9_000_000, headers={"X-API-Key": KEY, "Content-Type": "image/jpeg"})
    assert big.status_code == 413 and "upload limit" in big.json()["detail"]
    codes = sorted({c for pair in seen.values() for c in pair})
    assert set(codes) <= {200, 201, 415, 422}, codes
    print(f"\n{len(seen)} bad-file kinds over HTTP; status codes {codes}")
    # still healthy, and the fine images are all in the index with their true size
    assert client.get("/healthz").json()["status"] == "ok"
    good = [c for c in cases if c.expect == INDEXED]
    with Library.open(copy, create=False) as lib:
        uploads = [r for r in lib.records() if "/uploads/" in r.path]
        assert sorted((r.width, r.height) for r in uploads) == sorted({c.data: c.size for c in good}.values())
        assert [h.id for h in lib.search(cases[0].data, k=1)] == [h["id"] for h in client.post(
            "/api/search?k=1", content=cases[0].data, headers={"Content-Type": "image/jpeg"}).json()["results"]]
