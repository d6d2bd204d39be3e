"""The Duplicates view and the search-by-tag box in headless Chromium against a real server,
over a small library holding a byte copy and a re-encoded, resized copy of real photos.
Expected groups and hits come from the engine (`Library.duplicates`, `Library.search_text`)."""

from __future__ import annotations

import shutil

import pytest

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import save_jpeg
from tests.support.server import BackgroundServer
from tests.support.web import ARTIFACTS, card_ids, settle

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def dup_library(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("web-dups")
    folder = root / "photos"
    for name in ("coffee", "rocket", "chelsea", "astronaut"):
        save_jpeg(photos[name], folder / f"{name}.jpg", 90)
    shutil.copyfile(folder / "coffee.jpg", folder / "coffee-copy.jpg")  # exact copy
    rocket = photos["rocket"]
    save_jpeg(rocket.resize((rocket.width * 3 // 4, rocket.height * 3 // 4)), folder / "rocket-small.jpg", 60)  # re-encoded
    with Library.open(root / "lib") as lib:
        assert lib.add([folder]).failed == []
    return root / "lib"


@pytest.fixture(scope="module")
def dup_site(dup_library):
    with BackgroundServer(create_app(dup_library)) as url, Library.open(dup_library, create=False) as lib:
        yield url, lib


def test_duplicates_view_shows_the_groups(watched: Page, dup_site):
    page = watched
    url, lib = dup_site
    report = lib.duplicates()
    expected = [(g.tier, [m.id for m in g.members]) for g in report.groups]
    tiers = {tier for tier, _ in expected}
    assert {"exact", "near"} <= tiers  # what this library was built to hold
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(url)
    page.locator("#tab-dups").click()
    expect(page.locator("#dups-summary")).to_contain_text(f"{len(expected)} group")
    groups = page.locator("#dups .dup-group")
    expect(groups).to_have_count(len(expected))
    for n, (tier, ids) in enumerate(expected):
        group = groups.nth(n)
        expect(group.locator(".tier")).to_have_text(tier)
        assert [int(i) for i in group.locator(".card").evaluate_all("cs => cs.map(c => c.dataset.id)")] == ids
        first_score = f"{report.groups[n].members[-1].score:.3f}"
        expect(group.locator(".score").last).to_have_text(first_score)
    assert page.url.endswith("#duplicates")
    settle(page, "#dups")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-duplicates.png"))

    # a tier with no groups is explained, not just blank
    similar_only = lib.duplicates(tiers=["similar"]).groups
    page.locator("#dups-tier").select_option("similar")
    if similar_only:
        expect(groups).to_have_count(len(similar_only))
    else:
        expect(page.locator("#dups-empty")).to_contain_text("No duplicates: no two images are similar shots")

    # phone width: nothing sticks out sideways
    page.locator("#dups-tier").select_option("")
    expect(groups).to_have_count(len(expected))
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    settle(page, "#dups")
    page.screenshot(path=str(ARTIFACTS / "web-duplicates-phone.png"), full_page=True)

    # a thumbnail click is "more like this"
    near = next(ids for tier, ids in expected if tier == "near")
    page.locator(f"#dups .card[data-id='{near[1]}']").click()
    expect(page.locator("#search-view")).to_be_visible()
    assert page.url.endswith(f"#similar/{near[1]}")
    neighbours = [h.id for h in lib.search(near[1], k=24)]
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(neighbours[0]))
    assert card_ids(page) == neighbours and neighbours[0] == near[0]


def test_search_by_tag_box(watched: Page, dup_site):
    page = watched
    url, lib = dup_site
    page.goto(url)
    expected = [h.id for h in lib.search_text("espresso", k=24)]
    assert expected
    page.locator("#tag-input").fill("espresso")
    page.locator("#tag-input").press("Enter")
    expect(page.locator("#summary")).to_contain_text(f"{len(expected)} image")
    expect(page.locator("#summary")).to_contain_text("tagged “espresso”")
    assert card_ids(page) == expected and page.url.endswith("#tag/espresso")
    page.locator("#tag-input").fill("zzzqqq")
    page.locator("#tag-input").press("Enter")
    expect(page.locator("#message")).to_have_text(
        "'zzzqqq' is not a word Lookalike can search for; see `lookalike tags` for every searchable word")
