"""Relevance feedback on the page in headless Chromium: thumbs up / down refine an image query
in place, the refinements show as removable chips, and the address keeps them
(#similar/12+34-56) so reload and back give the same searches."""

from __future__ import annotations

import pytest
from PIL import ImageOps

from lookalike.demo.samples import save_jpeg
from tests.support.web import ARTIFACTS, card_ids, settle
from tests.support.web import PAGE_K as K

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402


def _chips(page: Page) -> list[tuple[str, int]]:
    return [(c["kind"], int(c["id"])) for c in page.locator("#fb-chips .fb-chip").evaluate_all(
        "cs => cs.map(c => ({kind: c.classList.contains('up') ? 'up' : 'down', id: c.dataset.id}))")]


def _wait_for(page: Page, ids: list[int]) -> None:
    """Until the result cards are exactly `ids`, in order."""
    page.wait_for_function("ids => [...document.querySelectorAll('#results .card')].map(c => Number(c.dataset.id)).join() === ids.join()",
                           arg=ids)


def _card(page: Page, id_: int):
    return page.locator(f"#results .card-item:has(.card[data-id='{id_}'])")


def test_thumbs_refine_the_query_and_the_address_keeps_them(watched: Page, site, lib, gallery):
    page = watched
    page.set_viewport_size({"width": 1280, "height": 860})
    rocket = lib.find_path(gallery.groups["rocket"][0]).id
    page.goto(f"{site}/#similar/{rocket}")
    first = [h.id for h in lib.search(rocket, k=K)]
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(first[0]))
    assert card_ids(page) == first
    expect(page.locator("#fb-chips")).to_be_hidden()

    # Thumbs up on a rocket edit, thumbs down on the first result that is not a rocket.
    up = first[0]
    down = next(i for i in first if gallery.photo_of(lib.get(i).path) != "rocket")
    _card(page, up).locator(".fb-up").click()
    expect(page).to_have_url(f"{site}/#similar/{rocket}+{up}")
    after_up = [h.id for h in lib.search([rocket, up], k=K)]
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(after_up[0]))
    assert card_ids(page) == after_up and up not in after_up
    _card(page, down).locator(".fb-down").click()
    expect(page).to_have_url(f"{site}/#similar/{rocket}+{up}-{down}")
    refined = [h.id for h in lib.search([rocket, up], k=K, negative=[down])]
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(refined[0]))
    _wait_for(page, refined)
    assert down not in refined and _chips(page) == [("up", up), ("down", down)]
    settle(page, "#results")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-feedback.png"))

    # Reload: the same refined search, chips and all.
    page.reload()
    _wait_for(page, refined)
    assert _chips(page) == [("up", up), ("down", down)]
    expect(page.locator(f"#fb-chips .fb-chip[data-id='{down}']")).to_contain_text(lib.get(down).path.rsplit("/", 1)[1])

    # Back: one refinement fewer.
    page.go_back()
    expect(page).to_have_url(f"{site}/#similar/{rocket}+{up}")
    _wait_for(page, after_up)
    assert _chips(page) == [("up", up)]

    # The chip's x removes it: back to the plain query.
    page.locator(f"#fb-chips .fb-chip[data-id='{up}'] .fb-remove").click()
    expect(page).to_have_url(f"{site}/#similar/{rocket}")
    _wait_for(page, first)
    expect(page.locator("#fb-chips")).to_be_hidden()

    # Clicking a result starts a new query: no refinements carried over.
    _card(page, first[1]).locator(".fb-down").click()
    expect(page).to_have_url(f"{site}/#similar/{rocket}-{first[1]}")
    top = lib.search(rocket, k=1, negative=[first[1]])[0].id
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(top))
    page.locator("#results .card").first.click()
    expect(page).to_have_url(f"{site}/#similar/{top}")
    _wait_for(page, [h.id for h in lib.search(top, k=K)])
    expect(page.locator("#fb-chips")).to_be_hidden()


def test_thumbs_refine_an_uploaded_query_too(watched: Page, site, lib, gallery, photos, tmp_path):
    page = watched
    page.goto(site)
    query = save_jpeg(ImageOps.grayscale(photos["coffee"]).convert("RGB"), tmp_path / "coffee-grey.jpg", 85)
    page.locator("#file-input").set_input_files(query)
    first = [h.id for h in lib.search(query, k=K)]
    _wait_for(page, first)
    down = next(i for i in first if gallery.photo_of(lib.get(i).path) != "coffee")
    _card(page, first[0]).locator(".fb-up").click()
    _card(page, down).locator(".fb-down").click()
    # The upload goes again, with the refinements as form fields ids / not_ids.
    _wait_for(page, [h.id for h in lib.search([query, first[0]], k=K, negative=[down])])
    assert _chips(page) == [("up", first[0]), ("down", down)]
    assert "#similar" not in page.url  # an upload has no address to keep
