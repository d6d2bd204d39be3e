"""The web page in headless Chromium: the line between good matches and the rest, "no good
match" for an unrelated picture, and the "Why did it match?" heat maps."""

from __future__ import annotations

import pytest
from PIL import Image

from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from tests.support.web import ARTIFACTS
from tests.support.web import PAGE_K as K

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402


def unrelated(tmp_path) -> str:
    if fashion_mnist_available():
        im = Image.fromarray(load_fashion_mnist("test").pixels[0]).convert("RGB")  # type: ignore[index]
    else:
        im = Image.new("RGB", (28, 28), "white")
    path = tmp_path / "sneaker.png"
    im.resize((112, 112)).save(path)
    return str(path)


def test_good_matches_are_set_apart_and_unrelated_queries_get_no_good_match(watched: Page, site, lib, gallery, tmp_path):
    page = watched
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    chelsea = next(h.id for h in lib.search(gallery.groups["chelsea"][0], k=1))
    page.goto(f"{site}#similar/{chelsea}")
    expect(page.locator("#results .card")).to_have_count(K)
    hits = lib.search(chelsea, k=K)
    n_good = sum(h.confidence >= lib.calibration.good_match for h in hits)
    assert 0 < n_good < K
    # The separator sits right after the last good match, and says what follows.
    items = page.locator("#results > li")
    expect(items.nth(n_good)).to_have_class("separator")
    expect(items.nth(n_good)).to_contain_text("Not good matches")
    expect(page.locator("#summary")).not_to_contain_text("no good match")
    first = page.locator("#results .card").first
    expect(first.locator("xpath=..").locator(".confidence")).to_have_text(f"{round(hits[0].confidence * 100)}%")
    page.screenshot(path=str(ARTIFACTS / "web-good-matches.png"))

    # "Why did it match?": the thumbnails become heat maps from /api/explain, and back.
    page.locator("#explain-toggle").check()
    src = page.locator("#results .card img").first.get_attribute("src")
    assert src.startswith(f"/api/explain?query={chelsea}&result={hits[0].id}")
    page.wait_for_function("() => [...document.querySelectorAll('#results .card img')].slice(0, 6)"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(ARTIFACTS / "web-explain.png"))
    page.locator("#explain-toggle").uncheck()
    assert "/thumb" in page.locator("#results .card img").first.get_attribute("src")

    # An unrelated picture: "no good match", and the line above every result.
    page.goto(site)
    page.locator("#file-input").set_input_files(unrelated(tmp_path))
    expect(page.locator("#summary")).to_contain_text("no good match")
    expect(page.locator("#results > li").first).to_have_class("separator")
    expect(page.locator("#results > li").first).to_contain_text("No good match")
    page.screenshot(path=str(ARTIFACTS / "web-no-good-match.png"))
