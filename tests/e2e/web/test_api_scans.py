"""Scans through the REST API on a real server: a DICOM upload is a query like an image (windowed
as the library windows its scans), results carry the DICOM fields, and a frame's thumbnail is
that frame."""

from __future__ import annotations

import io

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
