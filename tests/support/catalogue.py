"""Catalogue fixtures: Fashion-MNIST products and bundled photos as image files, and a real
HTTP server on 127.0.0.1 serving them (with a flaky and a slow route for retries/deadlines).
Registered for every test by `pytest_plugins` in tests/conftest.py."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.demo.samples import save_jpeg
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist

PRODUCTS_PER_CLASS = 4
CATEGORY = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


@pytest.fixture(scope="session")
def products(tmp_path_factory) -> list[dict]:
    """Real product photos: a few Fashion-MNIST test images per class, written as PNG files
    (upscaled to 112 px so they look like a shop's pictures rather than thumbnails)."""
    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    data = load_fashion_mnist("test")
    root = tmp_path_factory.mktemp("products")
    out = []
    for label in range(10):
        for n, i in enumerate(np.flatnonzero(data.labels == label)[:PRODUCTS_PER_CLASS]):
            path = root / f"{CATEGORY[label]}-{n}.png"
            data.image(int(i)).resize((112, 112), Image.BICUBIC).save(path)
            out.append({"sku": f"SKU-{label}{n:02d}", "category": CATEGORY[label], "file": path,
                        "price": 10 + 5 * label + n, "index": int(i)})
    return out


@pytest.fixture(scope="session")
def photo_files(tmp_path_factory, photos) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("photo-files")
    return {name: save_jpeg(photos[name], root / f"{name}.jpg") for name in ("chelsea", "coffee", "rocket", "astronaut")}


class ImageServer:
    """Serves a folder; `/flaky/NAME` answers 503 on its first request, `/slow/NAME` waits 3 s."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: Counter[str] = Counter()
        self._flaky_seen: set[str] = set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests[self.path] += 1
                if self.path.startswith("/flaky/"):
                    if self.path not in server._flaky_seen:
                        server._flaky_seen.add(self.path)
                        self.send_error(503)
                        return
                    self.path = self.path[len("/flaky"):]
                elif self.path.startswith("/slow/"):
                    time.sleep(3)
                    self.path = self.path[len("/slow"):]
                super().do_GET()

        handler = functools.partial(Handler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def total(self) -> int:
        return sum(self.requests.values())


@pytest.fixture()
def image_server(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    root = tmp_path / "served"
    root.mkdir()
    server = ImageServer(root)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
