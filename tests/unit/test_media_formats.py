"""HEIC/HEIF, AVIF and camera RAW decode to the picture they hold, upright; broken ones get
a one-line reason. Files are written by the real encoders (tests/support/media.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageLoadError
from lookalike.imaging import decode_image, load_image, original_size
from lookalike.media.formats import looks_like_heif, media_kind
from lookalike.media.raw import decode_raw
from tests.support.media import encoded, exif_block, heic_bytes, write_avif, write_dng, write_heic


def _close(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference (0..255) of two images of the same size."""
    assert a.size == b.size
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b.convert("RGB"), np.float32)).mean())


@pytest.fixture(scope="module")
def coffee(photos) -> Image.Image:
    return photos["coffee"].resize((400, 267))  # not square: orientation mistakes show


def test_heic_decodes_upright(tmp_path, coffee):
    path = write_heic(tmp_path / "coffee.heic", coffee, exif_block(orientation=6))  # "rotate 90° clockwise to view"
    assert looks_like_heif(path.read_bytes()[:64])
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (267, 400)
    assert _close(im, coffee.transpose(Image.Transpose.ROTATE_270)) < 8
    assert original_size(im) == (267, 400)


def test_heif_is_recognised_by_content_under_any_name(coffee):
    data = heic_bytes(coffee)
    assert decode_image(data, "upload.bin").size == coffee.size


def test_avif_decodes(tmp_path, coffee):
    path = write_avif(tmp_path / "coffee.avif", coffee)
    assert not looks_like_heif(path.read_bytes()[:64])  # AVIF is Pillow's own plugin, not libheif's
    im = load_image(path)
    assert im.size == coffee.size and _close(im, coffee) < 8


def test_raw_dng_demosaics_to_the_photo(tmp_path, photos):
    pytest.importorskip("pidng")
    astronaut = photos["astronaut"]  # 512x512
    path = write_dng(tmp_path / "astronaut.dng", astronaut)
    assert media_kind(path) == "raw"
    im = load_image(path, draft_size=224)
    assert im.size == (256, 256)  # half-size demosaic: one pixel per 2x2 Bayer cell
    assert original_size(im) == (512, 512)
    # The test DNG has no real colour calibration, so compare structure (grey levels), not colour.
    got = np.asarray(im.convert("L"), np.float32)
    want = np.asarray(astronaut.resize((256, 256)).convert("L"), np.float32)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9


def test_raw_uses_a_large_embedded_preview(tmp_path, photos):
    pytest.importorskip("pidng")
    # Sensor data and preview show different photos, so the result says which one was used.
    preview = photos["coffee"].resize((480, 320))
    path = write_dng(tmp_path / "p.dng", photos["astronaut"], preview=preview)
    im = load_image(path)
    assert im.size == (480, 320) and _close(im, preview) < 6
    assert original_size(im) == (512, 512)  # the record keeps the sensor's size
    small = write_dng(tmp_path / "s.dng", photos["astronaut"], preview=photos["coffee"].resize((160, 107)))
    assert load_image(small).size == (256, 256)  # too small for the model: demosaiced instead


def test_raw_preview_is_turned_upright(tmp_path, photos):
    pytest.importorskip("pidng")
    preview = photos["coffee"].resize((480, 320))
    path = write_dng(tmp_path / "r.dng", photos["astronaut"], preview=preview, orientation=6)  # camera held upright
    im = load_image(path)
    assert im.size == (320, 480) and _close(im, preview.transpose(Image.Transpose.ROTATE_270)) < 6
    assert decode_raw(path.read_bytes(), "r.dng", min_preview=0).size == (256, 256)


def test_raw_without_preview_takes_the_demosaic_either_way(tmp_path, photos):
    pytest.importorskip("pidng")
    data = write_dng(tmp_path / "a.dng", photos["chelsea"]).read_bytes()
    a, b = decode_raw(data, "a.dng"), decode_raw(data, "a.dng", min_preview=0)
    assert a.size == b.size and _close(a, b) == 0


@pytest.mark.parametrize("data, reason", [
    (b"II*\0" + b"\0" * 200, "RAW"),
    (b"this is not a raw file at all" * 20, "RAW"),
])
def test_broken_raw_gets_one_line_reason(data, reason):
    with pytest.raises(ImageLoadError) as e:
        decode_image(data, "broken.nef")
    assert reason in e.value.reason and "\n" not in str(e.value)


def test_truncated_heic_gets_one_line_reason(coffee):
    data = heic_bytes(coffee)
    with pytest.raises(ImageLoadError) as e:
        decode_image(data[: len(data) // 2], "cut.heic")
    assert "\n" not in str(e.value) and "cut.heic" in str(e.value)


def test_jpeg_still_decodes_as_before(coffee):
    assert decode_image(encoded(coffee, "JPEG", quality=95), "x.jpg").size == coffee.size
