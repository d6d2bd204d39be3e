"""The page's "Same photo first" switch in headless Chromium, over a library of the bundled
photos: a turned close-up of one photo, which the features alone rank below another photo,
finds its original first once the switch sends verify=true, with "N matching points" on its
card, for the whole upload, a region of it and a library image; the switch is remembered,
stands aside (saying so) for + / − refinements and one result per scan series, and is
disabled for a tag search and on a server without OpenCV."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import save_jpeg
from lookalike.engine.verify import MIN_INLIERS
from lookalike.eval.hard_edits import crop_area
from tests.support.server import BackgroundServer, free_port, start_serve_process
from tests.support.web import ARTIFACTS, card_ids, drag_on_query

pytest.importorskip("cv2")  # verification needs OpenCV (the duplicates extra)
pytest.importorskip("playwright")
from playwright.sync_api import Page, Response, expect  # noqa: E402


@dataclass
class Site:
    url: str
    camera: int      # the original the query was cut from
    query: Path      # a quarter of it, turned 90°
    plain: list[int]  # the library's answer without verification


@pytest.fixture(scope="module")
def photos_site(originals_library, originals_dir, tmp_path_factory) -> Iterator[Site]:
    """The page over a library of the bundled photos (one file each, no edits)."""
    root = tmp_path_factory.mktemp("page-verify")
    original = originals_dir / "camera.jpg"
    with Image.open(original) as im:
        detail = crop_area(im.convert("RGB"), np.random.default_rng(0), 0.25).transpose(Image.Transpose.ROTATE_90)
    query = save_jpeg(detail, root / "camera-detail.jpg", 90)
    with Library.open(originals_library, create=False) as lib:
        camera = lib.find_path(original).id
        plain = [h.id for h in lib.search(query, k=24)]
    with BackgroundServer(create_app(originals_library)) as url:
        yield Site(url, camera, query, plain)


def _search(response: Response) -> bool:
    """The answer to an image search (POST /api/search), whose request the test reads too."""
    return response.request.method == "POST" and "/api/search" in response.url


def _first(page: Page):
    return page.locator("#results .card-item").first


def test_same_photo_first_finds_the_original_of_a_turned_crop(watched: Page, photos_site: Site):
    page = watched
    page.set_viewport_size({"width": 1280, "height": 900})
    # The features alone put another photo first: what verification is for.
    assert photos_site.plain[0] != photos_site.camera and photos_site.camera in photos_site.plain
    page.goto(photos_site.url)
    toggle = page.locator("#verify-toggle")
    expect(toggle).not_to_be_checked()
    expect(page.locator("#verify-label")).to_have_attribute("title", re.compile("top 20 results .* point by point; slower"))

    # Off: the plain order, no matching points.
    with page.expect_response(_search) as plain_search:
        page.locator("#file-input").set_input_files(photos_site.query)
    assert "verify" not in plain_search.value.request.url
    expect(_first(page).locator(".card")).to_have_attribute("data-id", str(photos_site.plain[0]))
    assert card_ids(page) == photos_site.plain
    expect(page.locator("#results .inliers")).to_have_count(0)

    # On: the same upload again, with verify=true; the original comes first with its points.
    with page.expect_response(_search) as verified_search:
        toggle.check()
    assert "verify=true" in verified_search.value.request.url
    answer = verified_search.value.json()["results"]
    verified = [h for h in answer if (h.get("inliers") or 0) >= MIN_INLIERS]
    assert answer[0]["id"] == photos_site.camera and verified[0]["id"] == photos_site.camera
    expect(_first(page).locator(".card")).to_have_attribute("data-id", str(photos_site.camera))
    expect(_first(page).locator(".inliers")).to_have_text(f"{answer[0]['inliers']} matching points")
    expect(page.locator("#results .inliers")).to_have_count(len(verified))
    n = len(verified)
    expect(page.locator("#summary")).to_contain_text(f"{n} result{'' if n == 1 else 's'} verified as the same photo")
    expect(page.locator("#summary")).not_to_contain_text("no good match")  # the same photo is a good match
    expect(page.locator("#message")).to_be_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-verify.png"))

    # A region dragged on the query is verified too (the crop goes with verify=true).
    with page.expect_response(_search) as region_search:
        drag_on_query(page, (0.1, 0.1), (0.9, 0.9))
    assert "verify=true" in region_search.value.request.url and region_search.value.status == 200
    assert region_search.value.json()["crop"] is not None  # the server searched the region
    expect(page.locator("#summary")).to_contain_text("for the selected region")
    expect(page.locator("#summary")).to_contain_text("verified as the same photo")
    expect(_first(page).locator(".card")).to_have_attribute("data-id", str(photos_site.camera))
    expect(_first(page).locator(".inliers")).to_contain_text("matching points")

    # Remembered: after a reload, "more like this" on an indexed photo verifies too (JSON id body).
    page.reload()
    expect(toggle).to_be_checked()
    with page.expect_response(_search) as id_search:
        page.goto(f"{photos_site.url}/#similar/{photos_site.camera}")
    assert "verify=true" in id_search.value.request.url
    assert '"id"' in (id_search.value.request.post_data or "")
    expect(page.locator("#summary")).to_contain_text("verified as the same photo")

    # Thumbs up makes it several query images, which verification does not take: it is left
    # out, the summary says so, and the search works.
    second = card_ids(page)[0]
    with page.expect_response(_search) as refined_search:
        page.locator(f"#results .card-item:has(.card[data-id='{second}']) .fb-up").click()
    assert "verify" not in refined_search.value.request.url
    assert refined_search.value.status == 200
    expect(page.locator("#summary")).to_contain_text("same photo first is off while refining")
    expect(page.locator("#results .inliers")).to_have_count(0)
    expect(page.locator("#message")).to_be_hidden()

    # Off again, on the plain upload: no verify, no matching points, not kept for next time.
    page.goto(photos_site.url)
    page.locator("#file-input").set_input_files(photos_site.query)
    expect(page.locator("#summary")).to_contain_text("verified as the same photo")
    with page.expect_response(_search) as off_search:
        toggle.uncheck()
    assert "verify" not in off_search.value.request.url
    expect(_first(page).locator(".card")).to_have_attribute("data-id", str(photos_site.plain[0]))
    expect(page.locator("#results .inliers")).to_have_count(0)
    expect(page.locator("#summary")).not_to_contain_text("same photo")
    page.reload()
    expect(toggle).not_to_be_checked()


def test_same_photo_first_is_disabled_for_a_tag_search(watched: Page, photos_site: Site):
    page = watched
    page.goto(photos_site.url)
    page.locator("#verify-toggle").check()  # on, and remembered; a tag search still cannot use it
    page.goto(f"{photos_site.url}/#tag/cat")
    expect(page.locator("#summary")).to_contain_text("tagged “cat”")
    expect(page.locator("#verify-toggle")).to_be_disabled()
    expect(page.locator("#verify-label")).to_have_attribute("title", re.compile("not apply to a tag search"))
    expect(page.locator("#verify-label")).to_have_class(re.compile("disabled"))
    # An image query enables it again.
    page.goto(f"{photos_site.url}/#similar/{photos_site.camera}")
    expect(page.locator("#verify-toggle")).to_be_enabled()
    expect(page.locator("#summary")).to_contain_text("verified as the same photo")


@pytest.fixture(scope="module")
def scans_site(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """The page over two MR series of the real Colin27 brain (DICOM files written from it)."""
    from tests.support.medical import ch2_dicom_series, need_mricron

    need_mricron()
    root = tmp_path_factory.mktemp("page-verify-scans")
    ch2_dicom_series(root / "data" / "series", range(50, 140, 15))
    ch2_dicom_series(root / "data" / "series2", range(60, 140, 20))
    with Library.open(root / "lib") as lib:
        assert lib.add([root / "data"]).failed == []
    with BackgroundServer(create_app(root / "lib")) as url:
        yield url, root / "data" / "series" / "IM0095"


def test_same_photo_first_stands_aside_for_one_result_per_series(watched: Page, scans_site):
    """verify does not combine with group=series: the page leaves it out and says so."""
    page = watched
    url, slice_file = scans_site
    page.goto(url)
    expect(page.locator("#scan-controls")).to_be_visible()
    page.locator("#verify-toggle").check()
    with page.expect_response(_search) as flat:
        page.locator("#file-input").set_input_files(slice_file)
    assert "verify=true" in flat.value.request.url and flat.value.status == 200
    expect(page.locator("#summary")).to_contain_text("verified as the same photo")
    with page.expect_response(_search) as grouped:
        page.locator("#scan-group").check()
    assert "group=series" in grouped.value.request.url and "verify" not in grouped.value.request.url
    assert grouped.value.status == 200
    expect(page.locator("#summary")).to_contain_text("same photo first is off with one result per series")
    expect(page.locator("#summary strong").first).to_have_text(re.compile(r"^\d+ series$"))
    expect(page.locator("#message")).to_be_hidden()


def test_same_photo_first_is_greyed_on_a_server_without_opencv(watched: Page, originals_library, photos_site: Site,
                                                               tmp_path):
    """A real `lookalike serve` whose Python cannot import OpenCV: /api/stats says why, the
    page greys the switch with that reason, and a remembered "on" never makes a search fail."""
    no_opencv = tmp_path / "no-opencv"
    no_opencv.mkdir()
    (no_opencv / "sitecustomize.py").write_text("import sys\nsys.modules['cv2'] = None  # this server has no OpenCV\n")
    port = free_port()
    server = start_serve_process(originals_library, port, env={
        "PYTHONPATH": os.pathsep.join(p for p in (str(no_opencv), os.environ.get("PYTHONPATH", "")) if p)})
    try:
        url = f"http://127.0.0.1:{port}"
        assert "pip install 'lookalike[duplicates]'" in httpx.get(f"{url}/api/stats").json()["verify_unavailable"]
        assert httpx.get(f"{photos_site.url}/api/stats").json()["verify_unavailable"] is None  # this process has it
        page = watched
        page.goto(url)
        page.evaluate("localStorage.setItem('lookalike-verify', 'on')")  # turned on in an earlier visit
        page.reload()
        toggle = page.locator("#verify-toggle")
        expect(toggle).to_be_checked()
        expect(toggle).to_be_disabled()
        expect(page.locator("#verify-label")).to_have_attribute("title", re.compile("Not available on this server.*duplicates"))
        with page.expect_response(_search) as answer:
            page.locator("#file-input").set_input_files(photos_site.query)
        assert "verify" not in answer.value.request.url and answer.value.status == 200
        expect(page.locator("#summary")).to_contain_text("same photo first is unavailable on this server")
        expect(page.locator("#message")).to_be_hidden()
        assert card_ids(page)[0] == photos_site.plain[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
