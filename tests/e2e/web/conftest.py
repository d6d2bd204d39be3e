"""Fixtures for the REST API and the web page: a real gallery, a real library, real servers,
and headless Debian Chromium for the browser test."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import build_gallery
from tests.support.server import BackgroundServer
from tests.support.web import CHROMIUM


@dataclass
class Gallery:
    root: Path
    groups: dict[str, list[Path]]  # photo name -> [original, edits...]
    library: Path

    def family(self, name: str) -> set[str]:
        return {str(p) for p in self.groups[name]}

    def photo_of(self, path: str) -> str:
        return next(name for name, files in self.groups.items() if path in {str(p) for p in files})


@pytest.fixture(scope="session")
def gallery(tmp_path_factory) -> Gallery:
    """The demo gallery (bundled photos + six edits each), indexed once; tests must not modify
    its index (write tests work on a copy)."""
    root = tmp_path_factory.mktemp("web-gallery")
    groups = build_gallery(root / "gallery")
    with Library.open(root / "lib") as lib:
        report = lib.add([root / "gallery"])
        assert report.failed == [] and report.added == sum(len(v) for v in groups.values())
    return Gallery(root / "gallery", groups, root / "lib")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser test needs Debian's chromium at {CHROMIUM} (apt-get install chromium; see scripts/system-deps.sh)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run"]}


@pytest.fixture(scope="module")
def lib(gallery):
    """The gallery's library, read-only by convention (tests that write use their own copy)."""
    with Library.open(gallery.library, create=False) as library:
        yield library


@pytest.fixture(scope="module")
def client(gallery):
    """An HTTP client to a real uvicorn server over the gallery's library."""
    with BackgroundServer(create_app(gallery.library)) as url, httpx.Client(base_url=url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def site(gallery):
    """The web page over the gallery's library, on a real server (the page tests' address)."""
    with BackgroundServer(create_app(gallery.library)) as url:
        yield url


@pytest.fixture
def watched(page):
    """The browser page (pytest-playwright), failing the test on any JavaScript error: errors
    belong on the page, not in the console."""
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None)
    page.set_default_timeout(30_000)
    yield page
    assert problems == []
