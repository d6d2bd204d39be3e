"""The similar-products widget in headless Chromium: the iframe page (themed by query
parameters) and the script tag on a shop page served from another origin (CORS)."""

from __future__ import annotations

import csv
import functools
import http.server
import threading

import pytest

from lookalike import Library
from lookalike.api import create_app
from tests.support.server import BackgroundServer

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def shop_library(tmp_path_factory, products):
    root = tmp_path_factory.mktemp("widget-shop")
    with open(root / "p.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image", "category", "price", "name", "currency"])
        writer.writerows([[p["sku"], str(p["file"]), p["category"], p["price"] + 0.5, f"{p['category'].title()} no. {n}", "EUR"]
                          for n, p in enumerate(products)])
    with Library.open(root / "lib") as lib:
        assert lib.import_items(root / "p.csv", "sku", ["image"]).added == len(products)
    return root / "lib"


@pytest.fixture()
def watched(page: Page):
    """Fails the test on a JavaScript exception. Unlike tests/e2e/web/conftest.py's, console
    errors are allowed: refused cross-origin loads are what the no-CORS case checks."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(30_000)
    yield page
    assert problems == []


def shop_page(directory, lookalike_url: str, sku: str) -> None:
    (directory / "product.html").write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Product {sku}</h1>
<div id="recs" data-lookalike-similar="{sku}" data-k="4" data-title="You may also like" data-accent="#cc0000"
     data-where='category != "bag"'></div>
<script src="{lookalike_url}/widget.js" async></script></body></html>""")


@pytest.fixture()
def shop_site(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_iframe_page_is_themed_and_captioned(watched: Page, shop_library, products):
    sku = products[0]["sku"]
    with BackgroundServer(create_app(shop_library)) as url:
        framing = watched.request.get(f"{url}/widget/similar/{sku}")
        assert framing.headers["x-frame-options"] == "DENY"  # no shop origins configured: not frameable
        watched.goto(f"{url}/widget/similar/{sku}?k=5&accent=%23cc0000&bg=%23101010&fg=white&columns=5&title=More")
        host = watched.locator("#widget")
        expect(host).to_have_attribute("data-lookalike-state", "ready")
        cards = host.locator(".lk-card")
        expect(cards).to_have_count(5)
        assert sku not in cards.evaluate_all("cs => cs.map(c => c.dataset.item)")
        expect(host.locator("h2")).to_have_text("More")
        first = cards.first
        expect(first.locator(".lk-name")).to_contain_text("no.")
        expect(first.locator(".lk-price")).to_contain_text("€")
        assert first.locator(".lk-price").evaluate("e => getComputedStyle(e).color") == "rgb(204, 0, 0)"
        assert host.locator(".lk").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(16, 16, 16)"
        watched.wait_for_function("() => [...document.querySelector('#widget').shadowRoot.querySelectorAll('img')]"
                                  ".every(i => i.complete && i.naturalWidth > 0)")
        bad = watched.request.get(f"{url}/widget/similar/{sku}?accent=red;background:url(x)")
        assert bad.status == 422
        assert watched.request.get(f"{url}/widget/similar/NOPE").status == 404


def test_iframe_embedded_in_a_shop_page(watched: Page, shop_library, products, shop_site):
    """With --cors-origin, that shop's pages may frame the widget page (and only they)."""
    directory, shop_url = shop_site
    sku = products[1]["sku"]
    with BackgroundServer(create_app(shop_library, cors_origins=[shop_url])) as url:
        (directory / "framed.html").write_text(f'<!doctype html><html><body><iframe id="w" width="600" height="400" '
                                               f'src="{url}/widget/similar/{sku}?k=3"></iframe></body></html>')
        headers = watched.request.get(f"{url}/widget/similar/{sku}").headers
        assert "x-frame-options" not in headers and f"frame-ancestors {shop_url}" in headers["content-security-policy"]
        watched.goto(f"{shop_url}/framed.html")
        frame = watched.frame_locator("#w")
        expect(frame.locator("#widget")).to_have_attribute("data-lookalike-state", "ready")
        expect(frame.locator("#widget .lk-card")).to_have_count(3)


def test_script_tag_on_a_shop_page_needs_cors(watched: Page, shop_library, products, shop_site):
    directory, shop_url = shop_site
    sku = products[3]["sku"]
    category = {p["sku"]: p["category"] for p in products}
    with BackgroundServer(create_app(shop_library, cors_origins=[shop_url])) as url:
        shop_page(directory, url, sku)
        watched.goto(f"{shop_url}/product.html")
        host = watched.locator("#recs")
        expect(host).to_have_attribute("data-lookalike-state", "ready")
        cards = host.locator(".lk-card")
        expect(cards).to_have_count(4)
        items = cards.evaluate_all("cs => cs.map(c => c.dataset.item)")
        assert sku not in items and all(category[i] != "bag" for i in items)
        expect(host.locator("h2")).to_have_text("You may also like")
    # No --cors-origin: the browser may not even load the script (Cross-Origin-Resource-Policy
    # same-origin), and the API's answers are not readable by the shop's page: nothing shows.
    with BackgroundServer(create_app(shop_library)) as url:
        shop_page(directory, url, sku)
        watched.goto(f"{shop_url}/product.html")
        watched.wait_for_timeout(2000)
        assert watched.locator("#recs").get_attribute("data-lookalike-state") in (None, "error")
        expect(watched.locator("#recs .lk-card")).to_have_count(0)
