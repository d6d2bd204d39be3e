"""Without the optional libraries, HEIC, RAW and video files are refused with the `pip install`
that adds them, per file, while the rest of a folder is indexed. The libraries are made
unimportable for the test the way an install without the extra lacks them."""

from __future__ import annotations

import sys

import pytest

from lookalike import Library
from lookalike.errors import MissingExtra
from lookalike.imaging import load_image
from lookalike.media import heif
from tests.support.media import write_dng, write_heic, write_jpeg, write_mp4


@pytest.fixture()
def without(monkeypatch):
    def hide(*modules: str) -> None:
        for name in modules:
            monkeypatch.setitem(sys.modules, name, None)  # `import name` now fails as if not installed
        monkeypatch.setattr(heif, "_registered", False)
    return hide


def test_heic_without_pillow_heif(tmp_path, photos, without):
    path = write_heic(tmp_path / "x.heic", photos["coffee"])
    without("pillow_heif")
    with pytest.raises(MissingExtra, match=r"pip install 'lookalike\[photos\]'"):
        load_image(path)


def test_folder_without_extras_indexes_the_rest(tmp_path, photos, without):
    pytest.importorskip("pidng")
    folder = tmp_path / "f"
    folder.mkdir()
    write_jpeg(folder / "a.jpg", photos["rocket"])
    write_heic(folder / "b.heic", photos["coffee"])
    write_dng(folder / "c.dng", photos["chelsea"])
    write_mp4(folder / "d.mp4", [photos["astronaut"]], 1.0)
    without("pillow_heif", "rawpy", "av")
    with Library.open(tmp_path / "lib") as lib:
        report = lib.add([folder])
        assert report.added == 1 and len(lib) == 1
    reasons = {p.rsplit("/", 1)[1]: r for p, r in report.failed}
    assert "lookalike[photos]" in reasons["b.heic"] and "lookalike[photos]" in reasons["c.dng"]
    assert "lookalike[video]" in reasons["d.mp4"]
