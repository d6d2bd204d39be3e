"""The README's links lead somewhere: every relative link names a file in the repository.
(The pages under docs/ are checked by `mkdocs build --strict`, which `make test` runs.)"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Pages written on other branches at the same time as this test; they exist once merged.
# Remove an entry as soon as its page is on main.
PENDING_PAGES: set[str] = set()  # pages linked before they are written (none now)


def _relative_links(path: Path) -> list[str]:
    links = [m.group(1).split("#")[0] for m in LINK.finditer(path.read_text())]
    return [link for link in links if link and "://" not in link and not link.startswith("mailto:")]


def test_readme_links_resolve():
    links = _relative_links(ROOT / "README.md")
    assert "docs/getting-started.md" in links and "docs/web-page.jpg" in links
    missing = [link for link in links if not (ROOT / link).exists() and link not in PENDING_PAGES]
    assert missing == []


def test_top_level_documents_link_only_existing_files():
    for name in ("CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md"):
        path = ROOT / name
        assert path.is_file(), name
        missing = [link for link in _relative_links(path) if not (ROOT / link).exists() and link not in PENDING_PAGES]
        assert missing == [], name


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert text.index("docs/web-page.jpg") < 1500  # the screenshot near the top
    assert "make demo" in text and "make test" in text and "pip install" in text
    assert (ROOT / "LICENSE").read_text().startswith("\n                                 Apache License")
