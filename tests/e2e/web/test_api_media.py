"""The REST API over a library of photos with capture dates, a HEIC and a video, through a
real uvicorn server on 127.0.0.1: browse orders, a frame's thumbnail is that frame, a frame's
file is its video, uploads of HEIC are searchable."""

from __future__ import annotations

import io
import os
from datetime import datetime

import httpx
import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.api import create_app
from lookalike.engine.entries import entry_time, file_of
from tests.support.media import exif_block, heic_bytes, write_heic, write_jpeg, write_mp4
from tests.support.server import BackgroundServer

SCENES = ["astronaut", "coffee", "chelsea"]


@pytest.fixture(scope="module")
def media_server(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("api-media")
    folder = root / "media"
    (folder / "b-trip").mkdir(parents=True)
    (folder / "a-home").mkdir()
    # Capture times run opposite to file names and file times: only EXIF can give this order.
    write_jpeg(folder / "b-trip" / "1.jpg", photos["rocket"], exif_block(taken="2023:05:01 09:00:00"))
    write_jpeg(folder / "a-home" / "2.jpg", photos["coins"], exif_block(taken="2021:05:01 09:00:00", model="iPhone 12"))
    write_heic(folder / "a-home" / "3.heic", photos["moon"], exif_block(taken="2022:05:01 09:00:00"))
    write_mp4(folder / "clip.mp4", [photos[n] for n in SCENES], 3.0)
    t = datetime(2024, 1, 1).timestamp()
    for i, p in enumerate(sorted(folder.rglob("*.*"))):
        os.utime(p, (t + i, t + i))
    with Library.open(root / "lib") as lib:
        report = lib.add([folder])
        assert report.failed == [] and report.frames == len(SCENES)
    with BackgroundServer(create_app(root / "lib")) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client, folder


def _paths(client: httpx.Client, sort: str) -> list[str]:
    r = client.get("/api/images", params={"sort": sort, "limit": 100})
    assert r.status_code == 200, r.text
    return [item["path"] for item in r.json()["items"]]


def test_browse_by_folder_and_name(media_server):
    client, folder = media_server
    by_folder = [os.path.relpath(file_of(p), folder) for p in _paths(client, "folder")]
    assert by_folder == ["clip.mp4"] * len(SCENES) + ["a-home/2.jpg", "a-home/3.heic", "b-trip/1.jpg"]
    frames = [entry_time(p) for p in _paths(client, "folder")[: len(SCENES)]]
    assert frames == sorted(frames)  # a video's frames in time order
    by_name = [os.path.basename(file_of(p)) for p in _paths(client, "name")]
    assert by_name == ["1.jpg", "2.jpg", "3.heic"] + ["clip.mp4"] * len(SCENES)
    assert _paths(client, "-name")[0].startswith(str(folder / "clip.mp4"))


def test_browse_by_capture_date(media_server):
    client, folder = media_server
    order = [os.path.relpath(file_of(p), folder) for p in _paths(client, "date")]
    assert order == ["a-home/2.jpg", "a-home/3.heic", "b-trip/1.jpg"] + ["clip.mp4"] * len(SCENES)  # video: file time 2024
    item = client.get("/api/images", params={"sort": "date", "limit": 1}).json()["items"][0]
    assert item["fields"]["camera"] == "iPhone 12" and item["fields"]["date"] == "2021-05-01T09:00:00"


def test_bad_sort_is_422(media_server):
    client, _ = media_server
    r = client.get("/api/images", params={"sort": "size"})
    assert r.status_code == 422


def test_frame_thumbnail_and_file(media_server, photos):
    client, folder = media_server
    items = client.get("/api/images", params={"sort": "folder", "limit": 100}).json()["items"]
    for item, name in zip(items[: len(SCENES)], SCENES):
        thumb = client.get(item["thumb_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        got = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("L").resize((64, 48)), np.float32)
        want = np.asarray(photos[name].resize((64, 48)).convert("L"), np.float32)
        assert np.abs(got - want).mean() < 12, name  # the thumbnail shows that frame's scene
    f = client.get(items[0]["image_url"])
    assert f.status_code == 200 and f.headers["content-type"] == "video/mp4"
    assert f.content == (folder / "clip.mp4").read_bytes()


def test_search_by_heic_upload_finds_the_frame(media_server, photos):
    client, folder = media_server
    r = client.post("/api/search", params={"k": 1}, files={"file": ("q.heic", heic_bytes(photos["coffee"]), "image/heic")})
    assert r.status_code == 200, r.text
    hit = r.json()["results"][0]
    assert file_of(hit["path"]) == str(folder / "clip.mp4") and 3.0 <= entry_time(hit["path"]) < 6.0
