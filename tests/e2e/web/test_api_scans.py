"""Scans through the REST API on a real server: a DICOM upload is a query like an image (windowed
as the library windows its scans, or as the request asks), results carry the DICOM fields, a
frame's thumbnail is that frame, results can be grouped by series, and DICOM files can be
uploaded into the library."""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.api import create_app
from tests.support.medical import ch2_dicom_series, copy_dicom_testfiles, need_mricron
from tests.support.server import BackgroundServer


@pytest.fixture(scope="module")
def scan_server(tmp_path_factory):
    need_mricron()
    root = tmp_path_factory.mktemp("api-scans")
    ch2_dicom_series(root / "data" / "series", range(50, 140, 15))
    ch2_dicom_series(root / "data" / "series2", range(60, 140, 20))  # the same brain again, another series
    copy_dicom_testfiles(["CT_small.dcm", "SC_rgb_2frame.dcm"], root / "data")
    with Library.open(root / "lib") as lib:
        assert lib.add([root / "data"]).failed == []
    with BackgroundServer(create_app(root / "lib")) as url, httpx.Client(base_url=url, timeout=120) as c:
        yield root, c


def test_dicom_upload_is_a_query(scan_server):
    root, client = scan_server
    data = (root / "data" / "CT_small.dcm").read_bytes()
    r = client.post("/api/search", params={"k": 3}, files={"file": ("scan.dcm", data, "application/dicom")})
    assert r.status_code == 200, r.text
    top = r.json()["results"][0]
    assert top["path"] == str(root / "data" / "CT_small.dcm") and top["score"] > 0.999
    assert top["fields"]["modality"] == "CT" and top["fields"]["window"] == "40,400 (soft)"
    series = client.post("/api/search", params={"k": 3, "where": 'series_description = "T1 Colin27 axial"'},
                         files={"file": ("IM0095", (root / "data" / "series" / "IM0095").read_bytes(), "application/dicom")})
    assert series.status_code == 200, series.text
    assert all(h["fields"]["series_description"] == "T1 Colin27 axial" for h in series.json()["results"])
    cut = data[:data.rfind(b"\xe0\x7f\x10\x00") + 1000]  # inside the Pixel Data element
    broken = client.post("/api/search", files={"file": ("x.dcm", cut, "application/dicom")})
    assert broken.status_code == 422 and "truncated pixel data" in broken.text


def test_frame_thumbnail_is_that_frame(scan_server):
    root, client = scan_server
    page = client.get("/api/images", params={"where": 'name = "SC_rgb_2frame.dcm"'}).json()
    items = sorted(page["items"], key=lambda i: i["path"])
    assert [i["path"].rsplit("#", 1)[1] for i in items] == ["frame=0", "frame=1"]
    thumbs = [client.get(f"/api/images/{i['id']}/thumb") for i in items]
    assert all(t.status_code == 200 and t.headers["content-type"] == "image/jpeg" for t in thumbs)
    pixels = [np.asarray(Image.open(io.BytesIO(t.content)).convert("RGB"), float) for t in thumbs]
    assert pixels[0].shape == (100, 100, 3) and np.abs(pixels[0] - pixels[1]).mean() > 1  # two different frames


def _thumb(client: httpx.Client, url: str) -> np.ndarray:
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg", r.text
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("L"), float)


def test_window_applies_to_the_query_and_the_thumbnails(scan_server):
    root, client = scan_server
    data = (root / "data" / "CT_small.dcm").read_bytes()
    plain = client.post("/api/search", params={"k": 3}, files={"file": ("scan.dcm", data, "application/dicom")}).json()
    bone = client.post("/api/search", params={"k": 3, "window": "bone"}, files={"file": ("scan.dcm", data, "application/dicom")})
    assert bone.status_code == 200, bone.text
    assert bone.json()["window"] == "bone" and "window" not in plain and "series" not in plain["results"][0]
    top, plain_top = bone.json()["results"][0], plain["results"][0]
    assert top["path"] == plain_top["path"] == str(root / "data" / "CT_small.dcm")
    assert top["score"] < plain_top["score"]  # the query was rendered in another window than the indexed file
    assert top["thumb_url"].endswith("&window=bone") and "window" not in plain_top["thumb_url"]
    soft, hard = _thumb(client, plain_top["thumb_url"]), _thumb(client, top["thumb_url"])
    assert soft.shape == hard.shape and np.abs(soft - hard).mean() > 10  # bone window: soft tissue goes dark
    assert np.abs(_thumb(client, top["thumb_url"]) - hard).max() == 0  # served again from its cache
    cached = set((root / "lib" / "thumbs").iterdir())
    custom = client.get(top["thumb_url"].replace("window=bone", "window=400,1800")).content  # bone's numbers
    assert np.abs(np.asarray(Image.open(io.BytesIO(custom)).convert("L"), float) - hard).mean() < 1
    assert set((root / "lib" / "thumbs").iterdir()) == cached  # typed windows are not cached (no disk filling)
    # Same window as the library's: the stored vector, exactly as without one.
    same = client.post("/api/search", params={"k": 1, "window": "40,400"}, files={"file": ("scan.dcm", data, "application/dicom")})
    assert same.json()["results"][0]["score"] == plain_top["score"]
    # As a JSON id search and as a form field too.
    by_id = client.post("/api/search", json={"id": plain_top["id"], "window": "lung", "k": 3})
    assert by_id.status_code == 200 and by_id.json()["window"] == "lung", by_id.text
    stored = client.post("/api/search", json={"id": plain_top["id"], "k": 3}).json()["results"]
    lung = {h["id"]: h["score"] for h in by_id.json()["results"]}
    assert plain_top["id"] not in lung  # never itself, even rendered again
    assert any(abs(lung[h["id"]] - h["score"]) > 1e-3 for h in stored if h["id"] in lung)  # the lung rendering was searched
    form = client.post("/api/search", data={"window": "brain"}, files={"file": ("scan.dcm", data, "application/dicom")})
    assert form.json()["window"] == "brain"
    for bad in ("purple", "40,-5"):
        r = client.post("/api/search", params={"window": bad}, files={"file": ("scan.dcm", data, "application/dicom")})
        assert r.status_code == 422 and "window" in r.json()["detail"], r.text
        assert client.get(plain_top["thumb_url"] + f"&window={bad}").status_code == 422


def test_preview_of_a_dicom_upload(scan_server):
    root, client = scan_server
    data = (root / "data" / "CT_small.dcm").read_bytes()
    soft = client.post("/api/scans/preview", files={"file": ("scan.dcm", data, "application/dicom")})
    bone = client.post("/api/scans/preview", params={"window": "bone"}, content=data, headers={"Content-Type": "application/dicom"})
    assert soft.status_code == bone.status_code == 200 and soft.headers["content-type"] == "image/jpeg"
    soft_px, bone_px = (np.asarray(Image.open(io.BytesIO(r.content)).convert("L"), float) for r in (soft, bone))
    assert soft_px.shape == (128, 128) and np.abs(soft_px - bone_px).mean() > 10
    thumb = client.get(client.post("/api/search", params={"k": 1}, files={"file": ("s.dcm", data)}).json()["results"][0]["thumb_url"])
    assert np.abs(np.asarray(Image.open(io.BytesIO(thumb.content)).convert("L"), float) - soft_px).mean() < 3  # the same rendering
    not_dicom = client.post("/api/scans/preview", files={"file": ("x.dcm", b"hello" * 100, "application/dicom")})
    assert not_dicom.status_code == 415 and "x.dcm: not a DICOM file" in not_dicom.json()["detail"]


def test_results_grouped_by_series(scan_server):
    root, client = scan_server
    query = (root / "data" / "series" / "IM0095").read_bytes()
    flat = client.post("/api/search", params={"k": 4}, files={"file": ("IM0095", query, "application/dicom")}).json()
    assert len({h["fields"]["series_uid"] for h in flat["results"]}) < 4  # slices of the same series crowd the list
    r = client.post("/api/search", params={"k": 4, "group": "series"}, files={"file": ("IM0095", query, "application/dicom")})
    assert r.status_code == 200, r.text
    body = r.json()
    results = body["results"]
    assert body["group"] == "series" and [h["rank"] for h in results] == list(range(1, len(results) + 1))
    assert len({h["series"] for h in results}) == len(results) == 4  # 2 Colin27 series, CT_small, the 2-frame file
    first = results[0]
    assert first["path"] == str(root / "data" / "series" / "IM0095") and first["score"] > 0.999
    assert first["series"] == first["fields"]["series_uid"] and first["series_entries"] == 6
    assert first["fields"]["series_description"] == "T1 Colin27 axial" and "slice_position" in first["fields"]
    assert sorted(_thumb(client, first["thumb_url"]).shape) == [181, 217]  # a DICOM file without an extension has its thumbnail
    second = results[1]
    assert second["path"].startswith(str(root / "data" / "series2")) and second["series_entries"] == 4
    assert [h["score"] for h in results] == sorted((h["score"] for h in results), reverse=True)
    # More like this, grouped: the query's own slice is left out, its series still answers with another slice.
    similar = client.get(f"/api/images/{first['id']}/similar", params={"group": "series", "k": 2})
    assert similar.status_code == 200, similar.text
    hits = similar.json()["results"]
    assert len(hits) == 2 and hits[0]["series_entries"] >= 4 and all(h["id"] != first["id"] for h in hits)
    assert client.get(f"/api/images/{first['id']}/similar", params={"group": "study"}).status_code == 422


def test_dicom_upload_into_the_library(scan_server):
    """POST /api/images takes a DICOM file: kept as uploads/<sha256>.dcm and indexed as a scan."""
    root, client = scan_server
    before = client.get("/healthz").json()["images"]
    two_frames = (root / "data" / "SC_rgb_2frame.dcm").read_bytes()
    added = client.post("/api/images", files={"file": ("two.dcm", two_frames, "application/dicom")})
    assert added.status_code == 201, added.text
    rec = added.json()
    assert rec["path"].endswith(".dcm#frame=0") and "/uploads/" in rec["path"] and rec["fields"]["format"] == "dicom"
    assert client.get("/healthz").json()["images"] == before + 2
    again = client.post("/api/images", content=two_frames, headers={"Content-Type": "application/dicom"})
    assert again.status_code == 200 and again.json()["id"] == rec["id"]
    cut = two_frames[:len(two_frames) - 500]
    broken = client.post("/api/images", files={"file": ("cut.dcm", cut, "application/dicom")})
    assert broken.status_code == 422 and "truncated pixel data" in broken.text
    gone = client.delete(f"/api/images/{rec['id']}")
    assert gone.status_code == 200 and gone.json()["file_removed"] is True
    assert client.get("/healthz").json()["images"] == before  # both frames went with the file
    assert not list((root / "lib" / "uploads").glob("*.dcm"))


def test_page_searches_with_a_dicom_upload(scan_server, watched, tmp_path):
    """The page takes a .dcm as the query and labels scan results with modality, description and position."""
    pytest.importorskip("playwright")
    from playwright.sync_api import expect

    root, client = scan_server
    page = watched
    page.goto(str(client.base_url) + "/")
    page.locator("#file-input").set_input_files(str(root / "data" / "series" / "IM0095"))
    first = page.locator("#results .card").first
    expect(first).to_be_visible()
    expect(page.locator("#results .scan").first).to_contain_text("MR · T1 Colin27 axial")
    expect(page.locator("#results .scan").first).to_contain_text(" mm")


def test_page_window_presets_and_series_view(scan_server, watched):
    """The page's scan controls: the series toggle asks for one card per series, the window preset
    re-renders the query and the thumbnails, and a bad custom window is a one-line message."""
    pytest.importorskip("playwright")
    from playwright.sync_api import expect

    from tests.support.web import ARTIFACTS, card_ids, settle

    root, client = scan_server
    page = watched
    page.goto(str(client.base_url) + "/")
    expect(page.locator("#scan-controls")).to_be_visible()  # this library holds scans
    page.locator("#file-input").set_input_files(str(root / "data" / "series" / "IM0095"))
    expect(page.locator("#results .card").first).to_be_visible()
    flat = card_ids(page)
    page.locator("#scan-group").check()
    expect(page.locator("#summary strong").first).to_have_text("4 series")
    grouped = card_ids(page)
    assert len(grouped) == 4 and grouped[0] == flat[0] and len(flat) > 4
    first = page.locator("#results .card-item").first
    expect(first.locator(".series")).to_have_text("best of 6 slices")
    expect(first.locator(".scan")).to_contain_text("MR · T1 Colin27 axial")
    page.locator("#scan-window").select_option("bone")
    expect(page.locator("#summary")).to_contain_text("window bone")
    page.wait_for_function("() => { const i = document.getElementById('query-img'); return i.complete && i.naturalWidth > 0; }")
    assert page.locator("#query-img").get_attribute("src").startswith("blob:")  # the server's rendering of the DICOM query
    expect(page.locator("#results .card img").first).to_have_attribute("src", re.compile(r"window=bone$"))
    settle(page, "#results")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "scans-series-bone.png"), full_page=True)
    page.locator("#results .card").nth(1).click()  # more like this: the other Colin27 series' best slice
    expect(page.locator("#query-img")).to_have_attribute("src", re.compile(r"/thumb\?window=bone$"))  # DICOM: its thumbnail
    page.wait_for_function("() => { const i = document.getElementById('query-img'); return i.complete && i.naturalWidth > 0; }")
    expect(page.locator("#summary strong").first).to_have_text(re.compile(r"^\d series$"))
    page.locator("#scan-window").select_option("custom")
    page.locator("#scan-custom").fill("40,-5")
    page.locator("#scan-custom").press("Enter")
    expect(page.locator("#message")).to_contain_text("window '40,-5'")
    page.locator("#scan-window").select_option("")  # back to the library's window: plain thumbnails
    page.locator("#file-input").set_input_files(str(root / "data" / "series" / "IM0095"))
    expect(page.locator("#summary strong").first).to_have_text("4 series")
    assert "window" not in page.locator("#results .card img").first.get_attribute("src")


def test_page_adds_a_dicom_file_to_the_library(scan_server, watched):
    pytest.importorskip("playwright")
    from playwright.sync_api import expect

    root, client = scan_server
    page = watched
    before = client.get("/healthz").json()["images"]
    page.goto(str(client.base_url) + "/")
    page.locator("#add-input").set_input_files(str(root / "data" / "SC_rgb_2frame.dcm"))
    expect(page.locator("#message")).to_contain_text("Added 1 image")
    assert client.get("/healthz").json()["images"] == before + 2  # one entry per frame
    uploaded = client.get("/api/images", params={"where": 'format = "dicom"', "limit": 500}).json()["items"]
    ids = [i["id"] for i in uploaded if "/uploads/" in i["path"]]
    assert len(ids) == 2
    assert client.delete(f"/api/images/{ids[0]}").status_code == 200  # leave the shared library as it was
    assert client.get("/healthz").json()["images"] == before
