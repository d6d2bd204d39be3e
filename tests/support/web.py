"""Helpers shared by the REST API and web page tests."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from PIL import Image

if TYPE_CHECKING:  # the browser tests are skipped where playwright is missing
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
# Screenshots the browser tests leave for people to look at.
ARTIFACTS = Path(os.environ.get("LOOKALIKE_ARTIFACTS") or Path(__file__).resolve().parents[2] / "artifacts")


PAGE_K = 24  # results per search on the web page (K in app.js)


def jpeg(im: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def upload(client: httpx.Client, data: bytes, name: str = "q.jpg", **params) -> httpx.Response:
    return client.post("/api/search", params=params, files={"file": (name, data, "image/jpeg")})


def settle(page: Page, grid: str) -> None:
    """Wait until the thumbnails on screen have loaded, for the screenshots."""
    page.wait_for_function("g => [...document.querySelectorAll(g + ' img')].slice(0, 12).every(i => i.complete && i.naturalWidth > 0)",
                           arg=grid)


def card_ids(page: Page, grid: str = "#results") -> list[int]:
    return [int(i) for i in page.locator(f"{grid} .card").evaluate_all("cards => cards.map(c => c.dataset.id)")]


def drag_on_query(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag a box on the loaded query image, corners given as fractions of its width and height
    (the page then searches that region)."""
    from playwright.sync_api import expect

    img = page.locator("#query-img")
    expect(img).to_have_js_property("complete", True)
    box = img.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=6)
    page.mouse.up()
