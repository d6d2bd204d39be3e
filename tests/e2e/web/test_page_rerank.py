"""The page's "Re-rank" switch in headless Chromium: on (the default) the server re-ranks by
query expansion, off the page asks for rerank=none and shows the plain nearest neighbours;
the choice is remembered, and the switch is disabled for a tag search."""

from __future__ import annotations

import re

import pytest

from tests.support.web import PAGE_K as K
from tests.support.web import card_ids

pytest.importorskip("playwright")
from playwright.sync_api import Page, Response, expect  # noqa: E402


def _search(response: Response) -> bool:
    return response.request.method == "POST" and "/api/search" in response.url


def _wait_for(page: Page, ids: list[int]) -> None:
    page.wait_for_function("ids => [...document.querySelectorAll('#results .card')].map(c => Number(c.dataset.id)).join() === ids.join()",
                           arg=ids)


def test_rerank_switch_chooses_query_expansion_or_the_plain_order(watched: Page, site, lib, gallery):
    page = watched
    rocket = lib.find_path(gallery.groups["rocket"][0]).id
    expanded = [h.id for h in lib.search(rocket, k=K)]
    plain = [h.id for h in lib.search(rocket, k=K, rerank="none")]
    assert expanded != plain  # the two orders differ for this query: the test can tell them apart
    toggle = page.locator("#rerank-toggle")

    with page.expect_response(_search) as first:
        page.goto(f"{site}/#similar/{rocket}")
    assert "rerank" not in first.value.request.url  # the server's default: query expansion
    expect(toggle).to_be_checked()
    _wait_for(page, expanded)
    expect(page.locator("#summary")).not_to_contain_text("not re-ranked")

    with page.expect_response(_search) as off:
        toggle.uncheck()
    assert "rerank=none" in off.value.request.url
    _wait_for(page, plain)
    expect(page.locator("#summary")).to_contain_text("not re-ranked")

    # Remembered across a reload; on again gives the expanded order back.
    page.reload()
    _wait_for(page, plain)
    expect(toggle).not_to_be_checked()
    with page.expect_response(_search) as on:
        toggle.check()
    assert "rerank" not in on.value.request.url
    _wait_for(page, expanded)
    assert card_ids(page) == expanded

    # A tag search has no query image to expand: greyed, saying why.
    page.goto(f"{site}/#tag/rocket")
    expect(page.locator("#summary")).to_contain_text("tagged “rocket”")
    expect(toggle).to_be_disabled()
    expect(page.locator("#rerank-label")).to_have_attribute("title", re.compile("tag search"))
