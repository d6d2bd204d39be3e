"""The web page as a photo library, in headless Chromium against real servers: cards show
folder and name, the full-size viewer (metadata, tags, keys), adding images behind the API
key, picking keepers and setting duplicates aside, stale errors cleared, empty states."""

from __future__ import annotations

import math
import os
import re
import shutil

import pytest

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import save_jpeg
from tests.support.server import BackgroundServer
from tests.support.web import ARTIFACTS, card_ids, settle

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

KEY = "page-test-key"


@pytest.fixture
def photo_site(tmp_path, photos):
    """Photos in two folders, a byte copy and a smaller re-encode; a server that needs a key."""
    folder = tmp_path / "photos"
    for name, sub in (("coffee", "kitchen"), ("chelsea", "pets"), ("rocket", "trips/florida"), ("astronaut", "trips/space")):
        save_jpeg(photos[name], folder / sub / f"{name}.jpg", 90)
    shutil.copyfile(folder / "kitchen" / "coffee.jpg", folder / "kitchen" / "coffee copy.jpg")
    rocket = photos["rocket"]
    save_jpeg(rocket.resize((rocket.width // 2, rocket.height // 2)), folder / "phone" / "rocket.jpg", 70)
    with Library.open(tmp_path / "lib") as lib:
        assert lib.add([folder]).failed == []
    with BackgroundServer(create_app(tmp_path / "lib", api_key=KEY)) as url, Library.open(tmp_path / "lib", create=False) as lib:
        yield url, lib, folder


def test_cards_name_their_folder_and_the_viewer_steps_through_them(watched: Page, photo_site):
    page = watched
    url, lib, folder = photo_site
    page.set_viewport_size({"width": 1280, "height": 860})
    page.goto(url + "#browse")
    records = lib.records(0, 48)
    expect(page.locator("#browse .card")).to_have_count(len(records))
    ids = card_ids(page, "#browse")
    assert ids == [r.id for r in records]
    third = page.locator("#browse .card-item").nth(2)
    rec = lib.get(ids[2])
    expect(third.locator(".name")).to_have_text(os.path.basename(rec.path))
    expect(third.locator(".folder")).to_have_text(re.compile(re.escape(os.path.basename(os.path.dirname(rec.path))) + "$"))
    assert third.locator(".card").get_attribute("title").startswith(rec.path)  # the full path on hover

    third.locator(".view").click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(page.locator("#viewer-name")).to_have_text(os.path.basename(rec.path))
    expect(page.locator("#viewer-path")).to_have_text(rec.path)
    expect(page.locator("#viewer-facts")).to_contain_text(f"{rec.width} × {rec.height} px")
    expect(page.locator("#viewer-facts")).to_contain_text(f"3 of {len(ids)}")
    top_label, top_p = rec.tags[0]
    expect(page.locator("#viewer-tags li").first).to_have_text(f"{top_label} {math.floor(top_p * 100 + 0.5)}%")  # toFixed: half up
    assert rec.fields  # the indexer's file fields: each is listed with its value
    for key in rec.fields:
        expect(page.locator("#viewer-fields dt", has_text=key).first).to_be_visible()
    expect(page.locator("#viewer-fields")).to_contain_text(str(rec.fields.get("format", "")))
    expect(page.locator("#viewer-img")).to_have_attribute("src", re.compile(f"/api/images/{rec.id}/file"))
    expect(page.locator("#viewer-img")).to_have_js_property("complete", True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-viewer.png"))
    page.keyboard.press("ArrowRight")
    expect(page.locator("#viewer-path")).to_have_text(lib.get(ids[3]).path)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#viewer-path")).to_have_text(lib.get(ids[1]).path)
    expect(page.locator("#viewer-prev")).to_be_enabled()
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()

    # from the viewer: "more like this"
    page.locator("#browse .view").first.click()
    page.locator("#viewer-similar").click()
    expect(viewer).to_be_hidden()
    expect(page.locator("#search-view")).to_be_visible()
    assert page.url.endswith(f"#similar/{ids[0]}")
    expect(page.locator("#results .card").first).to_have_attribute("data-id", str(lib.search(ids[0], k=1)[0].id))
    expect(page.locator("#results .folder").first).not_to_be_empty()


def test_add_images_behind_the_key_and_errors_do_not_outlive_their_view(watched: Page, photo_site, photos, tmp_path):
    page = watched
    url, lib, _ = photo_site
    before = len(lib)
    page.goto(url)
    expect(page.locator("#stats")).to_have_text(f"{before} images · {lib.model}")
    new = save_jpeg(photos["camera"], tmp_path / "new" / "camera.jpg", 90)
    notes = tmp_path / "new" / "notes.png"
    notes.write_text("not a picture")
    page.locator("#add-input").set_input_files([str(new), str(notes)])
    expect(page.locator("#key-dialog")).to_be_visible()  # the server wants its key
    page.locator("#key-input").fill(KEY)
    page.locator("#key-ok").click()
    expect(page.locator("#message")).to_contain_text("Added 1 image; 1 failed: notes.png: not an image")
    expect(page.locator("#message")).to_have_class("message error")
    expect(page.locator("#stats")).to_have_text(f"{before + 1} images · {lib.model}")
    assert len(lib) == before + 1
    # the same file again: already there, and the key is remembered for this tab
    page.locator("#add-input").set_input_files(str(new))
    expect(page.locator("#message")).to_have_text("Added 0 images; 1 already in the library")
    expect(page.locator("#key-dialog")).to_be_hidden()

    # an error shown in one view is gone when the user switches views
    page.locator("#tag-input").fill("zzzqqq")
    page.locator("#tag-input").press("Enter")
    expect(page.locator("#message")).to_contain_text("'zzzqqq' is not a word")
    page.locator("#tab-browse").click()
    expect(page.locator("#message")).to_be_hidden()
    page.locator("#tab-search").click()
    expect(page.locator("#message")).to_be_hidden()


def test_pick_a_keeper_and_set_the_others_aside(watched: Page, photo_site):
    page = watched
    url, lib, folder = photo_site
    report = lib.duplicates()
    assert [g.tier for g in report.groups] == ["exact", "near"]
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url + "#duplicates")
    groups = page.locator("#dups .dup-group")
    expect(groups).to_have_count(2)
    expect(page.locator("#dups-selection")).to_have_text(re.compile(r"^2 images from 2 groups would be set aside"))
    # keep the copy instead of the original in group 1; leave group 2 alone
    exact = report.groups[0]
    chosen = exact.members[1]
    groups.nth(0).locator(".card-item").nth(1).locator(".keep-this").click()
    expect(groups.nth(0).locator(".card.keep")).to_have_attribute("data-id", str(chosen.id))
    expect(groups.nth(0).locator(".card-item").nth(1).locator(".aside-toggle")).to_be_hidden()  # a keeper is never set aside
    original = groups.nth(0).locator(".card-item").nth(0).locator(".aside-toggle input")
    expect(original).not_to_be_checked()  # the former keeper is not set aside until ticked
    original.check()
    groups.nth(1).locator(".card-item").nth(1).locator(".aside-toggle input").uncheck()
    expect(page.locator("#dups-selection")).to_have_text(re.compile(r"^1 image from 1 group would be set aside"))
    settle(page, "#dups")
    page.screenshot(path=str(ARTIFACTS / "web-duplicates-resolve.png"))

    page.locator("#dups-move").click()
    expect(page.locator("#confirm-text")).to_contain_text("Move 1 image")
    page.locator("#confirm-cancel").click()  # cancelled: nothing happens
    assert os.path.exists(exact.members[0].path)
    page.locator("#dups-move").click()
    page.locator("#confirm-ok").click()
    page.locator("#key-input").fill(KEY)
    page.locator("#key-ok").click()
    expect(page.locator("#message")).to_contain_text("Set aside: 1 image")
    message = page.locator("#message").text_content()
    assert not os.path.exists(exact.members[0].path) and os.path.exists(chosen.path)  # the picked keeper stays
    assert all(os.path.exists(m.path) for m in report.groups[1].members)  # the unticked group is untouched
    expect(groups).to_have_count(1)  # the view reloads: only the near group is left
    log = re.search(r"--undo (\S+)", message).group(1)
    assert len(lib.undo_cleanup(log).restored) == 1 and os.path.exists(exact.members[0].path)


def test_an_empty_library_explains_how_to_fill_it(watched: Page, tmp_path):
    with Library.open(tmp_path / "empty"):
        pass
    with BackgroundServer(create_app(tmp_path / "empty")) as url:
        watched.goto(url + "#browse")
        expect(watched.locator("#browse-empty")).to_contain_text("This library is empty. Add pictures with the Add images button")
        watched.locator("#tab-dups").click()
        expect(watched.locator("#dups-empty")).to_contain_text("Duplicates need at least two images")
        expect(watched.locator("#dups-actions")).to_be_hidden()
