"""A video hit plays from the moment it was found: the file route answers byte ranges (what a
browser needs to start a video in the middle), and the page's viewer shows a video frame's
video positioned at the frame's time, in headless Chromium against a real server."""

from __future__ import annotations

import httpx
import pytest

from lookalike import Library
from lookalike.api import create_app
from tests.support.media import write_mp4
from tests.support.server import BackgroundServer

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

SCENES = ["astronaut", "coffee", "chelsea"]
SECONDS_EACH = 3.0


@pytest.fixture(scope="module")
def video_site(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("video-site")
    (root / "media").mkdir()
    clip = write_mp4(root / "media" / "clip.mp4", [photos[n] for n in SCENES], SECONDS_EACH)
    with Library.open(root / "lib") as lib:
        report = lib.add([root / "media"])
        assert report.failed == [] and report.frames == len(SCENES)
    with BackgroundServer(create_app(root / "lib")) as url, Library.open(root / "lib", create=False) as lib:
        yield url, lib, clip


def _late_frame(lib: Library):
    return max((r for r in lib.records()), key=lambda r: r.fields["video_time"])


def test_the_file_route_serves_byte_ranges(video_site):
    url, lib, clip = video_site
    data = clip.read_bytes()
    frame = _late_frame(lib)
    with httpx.Client(base_url=url, timeout=60) as client:
        whole = client.get(f"/api/images/{frame.id}/file")
        assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"
        part = client.get(f"/api/images/{frame.id}/file", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = client.get(f"/api/images/{frame.id}/file", headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == data[-50:]
        beyond = client.get(f"/api/images/{frame.id}/file", headers={"Range": f"bytes={len(data) + 10}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


def test_the_viewer_plays_a_frame_s_video_from_its_moment(page: Page, video_site):
    url, lib, _ = video_site
    frame = _late_frame(lib)
    assert frame.fields["video_time"] >= SECONDS_EACH  # not the first moment, so the start time is visible
    page.goto(url + "#browse")
    card = page.locator(f'#browse .card[data-id="{frame.id}"]')
    expect(card).to_have_count(1)
    card.locator("xpath=..").locator(".view").click()
    video = page.locator("#viewer-video")
    expect(video).to_be_visible()
    expect(page.locator("#viewer-img")).to_be_hidden()
    expect(video).to_have_attribute("src", f"/api/images/{frame.id}/file?v={frame.sha256[:16]}#t={frame.fields['video_time']:g}")
    # Chromium honours the #t= media fragment once it has the metadata (through range requests).
    page.wait_for_function("() => document.querySelector('#viewer-video').readyState >= 1", timeout=30_000)
    now = page.evaluate("() => document.querySelector('#viewer-video').currentTime")
    assert abs(now - frame.fields["video_time"]) < 0.5
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()
