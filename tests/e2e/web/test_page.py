"""The web page driven in headless Chromium against a real server: upload an image, see the
right result first, click it, see its neighbours, search a dragged region, browse, and see
errors explained on the page. Screenshots go to artifacts/."""

from __future__ import annotations

import os

import pytest
from PIL import ImageOps

from lookalike import Library
from lookalike.api import create_app
from lookalike.api.service import REGION_SCALE
from lookalike.config import DEFAULT_MODEL
from lookalike.demo.samples import save_jpeg
from lookalike.imaging import crop_relative, load_image
from tests.support.server import BackgroundServer
from tests.support.web import ARTIFACTS, card_ids, drag_on_query, settle
from tests.support.web import PAGE_K as K

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402


def test_search_click_crop_browse(watched: Page, site, lib, gallery, photos, tmp_path):
    page = watched
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(site)
    expect(page.locator("#stats")).to_have_text(f"{len(lib)} images · {lib.model}")
    page.screenshot(path=str(ARTIFACTS / "web-start.png"))

    # 1. Upload an edit the gallery has never seen: the engine's answer comes first.
    query = save_jpeg(ImageOps.grayscale(photos["chelsea"]).convert("RGB"), tmp_path / "cat-grey.jpg", 85)
    expected = [h.id for h in lib.search(query, k=K)]
    page.locator("#file-input").set_input_files(query)
    expect(page.locator("#summary")).to_contain_text(f"{K} results")
    assert card_ids(page) == expected
    assert gallery.photo_of(lib.get(expected[0]).path) == "chelsea"
    expect(page.locator("#results .card").first.locator(".score")).to_have_text(f"{lib.search(query, k=1)[0].score:.3f}")
    expect(page.locator("#summary")).to_contain_text(" ms")
    expect(page.locator("#query-label")).to_have_text("cat-grey.jpg")

    # 2. Click the first result: "more like this" shows its neighbours (its own edits first).
    first = expected[0]
    page.locator("#results .card").first.click()
    expect(page.locator("#query-label")).to_have_text(f"More like {os.path.basename(lib.get(first).path)}")
    neighbours = [h.id for h in lib.search(first, k=K)]
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(neighbours[0]))
    assert card_ids(page) == neighbours and first not in neighbours
    assert page.url.endswith(f"#similar/{first}")
    family = {gallery.photo_of(lib.get(i).path) for i in neighbours[:5]}
    assert family == {"chelsea"}

    # 3. Drag a box on the query image: the results are those of that region.
    drag_on_query(page, (0.30, 0.20), (0.75, 0.70))
    expect(page.locator("#summary")).to_contain_text("for the selected region")
    crop = tuple(float(v) for v in page.locator("#crop-box").get_attribute("data-crop").split(","))
    assert crop[0] < crop[2] and crop[1] < crop[3]
    region = crop_relative(load_image(lib.get(first).path, lib.extractor.draft_size * REGION_SCALE), crop)
    by_region = [h.id for h in lib.search_vector(lib.embed([region])[0], k=K, exclude=[first])]
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(by_region[0]))
    assert card_ids(page) == by_region
    settle(page, "#results")
    page.screenshot(path=str(ARTIFACTS / "web-desktop.png"))

    # 4. Browse pages through the library; a click there searches "more like this".
    page.locator("#tab-browse").click()
    expect(page.locator("#page-info")).to_have_text(f"1–48 of {len(lib)}")
    assert card_ids(page, "#browse") == [r.id for r in lib.records(0, 48)]
    page.locator("#next").click()
    expect(page.locator("#page-info")).to_have_text(f"49–96 of {len(lib)}")
    assert card_ids(page, "#browse") == [r.id for r in lib.records(48, 48)]
    settle(page, "#browse")
    page.screenshot(path=str(ARTIFACTS / "web-browse.png"))
    target = page.locator("#browse .card").nth(3)
    target_id = int(target.get_attribute("data-id"))
    target.click()
    expect(page.locator("#search-view")).to_be_visible()
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(lib.search(target_id, k=1)[0].id))

    # 5. A phone-sized screen: one column, the same results.
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#file-input").set_input_files(query)
    expect(page.locator("#query-label")).to_have_text("cat-grey.jpg")
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(expected[0]))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    settle(page, "#results")
    page.screenshot(path=str(ARTIFACTS / "web-phone.png"))
    page.screenshot(path=str(ARTIFACTS / "web-phone-full.png"), full_page=True)


def test_errors_are_explained_on_the_page(watched: Page, site, tmp_path):
    page = watched
    page.goto(site)
    notes = tmp_path / "notes.png"
    notes.write_text("these are my notes, not a picture")
    page.locator("#file-input").set_input_files(notes)
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#message")).to_have_text("notes.png: not an image (unrecognised format: looks like text)")
    expect(page.locator("#message")).to_have_class("message error")
    expect(page.locator("#drop-empty")).to_be_visible()  # ready for the next try
    page.goto(f"{site}/#similar/999999")
    expect(page.locator("#message")).to_have_text("no image with id 999999 in this library")


def test_empty_library_is_explained(watched: Page, tmp_path):
    with Library.open(tmp_path / "empty"):
        pass
    with BackgroundServer(create_app(tmp_path / "empty")) as url:
        watched.goto(url)
        expect(watched.locator("#message")).to_contain_text("This library has no images yet")
        expect(watched.locator("#stats")).to_have_text(f"0 images · {DEFAULT_MODEL}")
        watched.locator("#placeholder a").click()
        expect(watched.locator("#page-info")).to_have_text("No images yet")
        expect(watched.locator("#next")).to_be_disabled()
