"""EXIF -> fields: capture time with its UTC offset, camera, lens, orientation, GPS, from
JPEG, HEIC, AVIF, TIFF and DNG written with the tags a camera writes; `date` semantics."""

from __future__ import annotations

import os
from datetime import datetime

import pytest

from lookalike.engine.media_fields import image_fields, record_date
from lookalike.media.exif import photo_fields
from tests.support.media import encoded, exif_block, write_avif, write_dng, write_heic, write_jpeg

IPHONE = dict(taken="2021:06:01 10:15:30", offset="+02:00", make="Apple", model="iPhone 12",
              lens="iPhone 12 back dual wide camera 4.2mm f/1.6", orientation=6, gps=(48.8583, -2.2945))
WANT = {"taken": "2021-06-01T10:15:30+02:00", "make": "Apple", "camera": "iPhone 12",
        "lens": "iPhone 12 back dual wide camera 4.2mm f/1.6", "orientation": 6, "lat": 48.8583, "lon": -2.2945}


def _approx(fields: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in fields.items()}


@pytest.mark.parametrize("writer", [write_jpeg, write_heic, write_avif], ids=["jpeg", "heic", "avif"])
def test_camera_exif_becomes_fields(tmp_path, photos, writer):
    path = writer(tmp_path / f"shot.{writer.__name__[6:]}", photos["chelsea"], exif_block(**IPHONE))
    # HEIF keeps the rotation in the container (libheif returns upright pixels), so its EXIF says 1.
    want = {**WANT, "orientation": 1} if writer is write_heic else WANT
    assert _approx(photo_fields(path)) == want
    assert _approx(photo_fields(path.read_bytes())) == want


def test_tiff_exif(photos):
    exif = exif_block(taken="2019:12:31 23:59:59", make="NIKON CORPORATION", model="NIKON D750", gps=(-33.8568, 151.2153))
    data = encoded(photos["rocket"], "TIFF", exif=exif.tobytes())
    assert _approx(photo_fields(data)) == {"taken": "2019-12-31T23:59:59", "make": "NIKON CORPORATION",
                                            "camera": "NIKON D750", "lat": -33.8568, "lon": 151.2153}


def test_dng_camera_tags(tmp_path, photos):
    pytest.importorskip("pidng")
    path = write_dng(tmp_path / "x.dng", photos["coffee"], make="Canon", model="Canon EOS R5")
    fields = photo_fields(path)
    assert fields["make"] == "Canon" and fields["camera"] == "Canon EOS R5"


def test_no_exif_no_fields(photos):
    assert photo_fields(encoded(photos["coffee"], "PNG")) == {}
    assert photo_fields(b"not an image at all") == {}


def test_blank_and_bad_values_are_left_out(photos):
    exif = exif_block(taken="0000:00:00 00:00:00", offset="junk", make="  ", model="X100V\0\0", orientation=42)
    fields = photo_fields(encoded(photos["coffee"], "JPEG", exif=exif.tobytes()))
    assert fields == {"camera": "X100V"}


def test_offset_kept_only_when_valid(photos):
    exif = exif_block(taken="2020:02:29 12:00:00", offset="+5")
    assert photo_fields(encoded(photos["coffee"], "JPEG", exif=exif.tobytes())) == {"taken": "2020-02-29T12:00:00"}


def test_date_is_capture_wall_clock_else_file_time(photos):
    data = encoded(photos["coffee"], "JPEG", exif=exif_block(**IPHONE).tobytes())
    mtime = datetime(2024, 3, 4, 5, 6, 7).timestamp()
    fields = image_fields(data, mtime)
    assert fields["media"] == "image"
    assert fields["date"] == "2021-06-01T10:15:30"  # as the camera showed it, not converted to this machine's zone
    plain = image_fields(encoded(photos["coffee"], "JPEG"), mtime)
    assert plain == {"media": "image", "date": "2024-03-04T05:06:07"}
    assert record_date(None, os.path.getmtime(__file__)) <= datetime.now().isoformat()


def test_png_exif_is_not_read(photos):
    # Pillow would decode the whole PNG to find an eXIf chunk: not worth it for metadata.
    data = encoded(photos["coffee"], "PNG", exif=exif_block(model="iPhone 12").tobytes())
    assert photo_fields(data) == {}

