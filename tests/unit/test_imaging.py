"""Image loading: odd formats decode right, bad files give a reason, never a crash."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageLoadError
from lookalike.imaging import decode_image, load_image, original_size
from tests.support.images import huge_png_header


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"hello, I am text\n" * 10, "not an image"),
    (b"<!DOCTYPE html><html><body>hi</body></html>", "looks like HTML"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "looks like a PDF"),
    (huge_png_header(100_000, 100_000), "too large"),
])
def test_bad_bytes_get_a_reason(data, reason):
    with pytest.raises(ImageLoadError) as e:
        decode_image(data, "x.jpg")
    assert reason in e.value.reason


def test_truncated_jpeg(photos):
    data = _encode(photos["coffee"], "JPEG", quality=90)
    with pytest.raises(ImageLoadError) as e:
        decode_image(data[: len(data) // 3], "cut.jpg")
    assert "truncated" in e.value.reason


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="file not found"):
        load_image(tmp_path / "nope.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageLoadError, match="directory"):
        load_image(tmp_path / "dir.jpg")


def test_exif_orientation_is_applied(photos):
    im = photos["rocket"]  # landscape
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = _encode(im, "JPEG", exif=exif.tobytes())
    out = decode_image(data)
    assert out.size == (im.height, im.width)
    assert original_size(out) == (im.height, im.width)


@pytest.mark.parametrize("mode", ["CMYK", "P", "LA", "RGBA", "L", "I;16", "1"])
def test_colour_modes_become_rgb(photos, mode):
    src = photos["chelsea"]
    if mode == "I;16":  # a real 16-bit greyscale PNG
        im = Image.fromarray(np.asarray(src.convert("L"), dtype=np.uint16) * 257)
        assert im.mode.startswith("I;16")
    else:
        im = src.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    if mode == "P":
        im.info["transparency"] = 0
        data = _encode(im, fmt, transparency=0)
    else:
        data = _encode(im, fmt)
    out = decode_image(data)
    assert out.mode == "RGB" and out.size == src.size
    if mode in ("I;16", "L"):  # greyscale content survives the bit-depth conversion
        grey = np.asarray(out.convert("L"), dtype=np.float32)
        assert abs(grey.mean() - np.asarray(src.convert("L"), dtype=np.float32).mean()) < 2


def test_alpha_composited_on_white():
    im = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    out = decode_image(_encode(im, "PNG"))
    assert out.getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["WEBP", "GIF", "BMP", "TIFF"])
def test_other_formats(photos, fmt):
    out = decode_image(_encode(photos["astronaut"], fmt))
    assert out.mode == "RGB" and out.size == photos["astronaut"].size


def test_draft_decoding_keeps_original_size(photos):
    big = photos["retina"]  # 1411 x 1411
    out = decode_image(_encode(big, "JPEG"), draft_size=224)
    assert min(out.size) >= 224 and out.size[0] < big.width
    assert original_size(out) == big.size


def test_arrays_and_pil_images(photos):
    arr = np.asarray(photos["coffee"])
    assert load_image(arr).size == photos["coffee"].size
    assert load_image(arr.astype(np.float32) / 255.0).size == photos["coffee"].size
    with pytest.raises(ImageLoadError):
        load_image(np.zeros((4, 4, 7)))
