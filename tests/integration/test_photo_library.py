"""A library of photos: records made before photo fields existed get them on the next index
run, without the model (EXIF, media, date, and the RAW file's own format name)."""

from __future__ import annotations

import pytest

from lookalike import Library
from lookalike.engine.fields import FILE_FIELDS
from lookalike.store import Upsert
from tests.support.media import exif_block, write_dng, write_heic, write_jpeg

IPHONE = dict(taken="2021:06:01 10:15:30", offset="+02:00", make="Apple", model="iPhone 12",
              lens="iPhone 12 back dual wide camera 4.2mm f/1.6", orientation=6, gps=(48.8583, -2.2945))


def test_older_records_get_photo_fields_without_the_model(tmp_path, photos):
    folder = tmp_path / "pics"
    folder.mkdir()
    write_jpeg(folder / "a.jpg", photos["rocket"], exif_block(**IPHONE))
    write_heic(folder / "b.heic", photos["coffee"], exif_block(taken="2020:01:02 03:04:05", model="Pixel 5"))
    pytest.importorskip("pidng")
    write_dng(folder / "c.dng", photos["chelsea"], model="EOS R5")
    with Library.open(tmp_path / "lib") as lib:
        lib.add([folder])
        before = {r.path: r.fields for r in lib.records()}
        assert before[str(folder / "a.jpg")]["camera"] == "iPhone 12"
        assert [before[str(folder / n)]["format"] for n in ("a.jpg", "b.heic", "c.dng")] == ["jpeg", "heif", "dng"]
        assert before[str(folder / "c.dng")]["camera"] == "EOS R5"
        # As written by a version without photo fields: file facts only.
        olds = lib.records()
        for r in olds:
            r.fields = {k: v for k, v in r.fields.items() if k in FILE_FIELDS}
        lib.store.write([Upsert(r) for r in olds])
        assert all("taken" not in r.fields and "media" not in r.fields for r in lib.records())
        report = lib.add([folder])
        assert (report.embedded, report.unchanged) == (0, 3)
        assert {r.path: r.fields for r in lib.records()} == before
