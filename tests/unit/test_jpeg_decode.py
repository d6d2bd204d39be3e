"""The indexer's scaled JPEG decoding through simplejpeg gives what Pillow's draft mode gives:
same size, same orientation, near-identical pixels, and Pillow still handles what simplejpeg
refuses (CMYK)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from lookalike import imaging
from lookalike.imaging import decode_image, original_size

DRAFT = 224


def jpeg(im: Image.Image, exif_orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    im.save(buf, "JPEG", quality=90, **kwargs)
    return buf.getvalue()


def big(photo: np.ndarray, factor: int = 4) -> Image.Image:
    """A real photo enlarged so that draft decoding has scales to choose from."""
    im = Image.fromarray(photo)
    return im.resize((im.width * factor, im.height * factor), Image.Resampling.BILINEAR)


def both(data: bytes, monkeypatch) -> tuple[Image.Image, Image.Image]:
    monkeypatch.setattr(imaging, "USE_SIMPLEJPEG", True)
    fast = decode_image(data, "x.jpg", draft_size=DRAFT)
    monkeypatch.setattr(imaging, "USE_SIMPLEJPEG", False)
    slow = decode_image(data, "x.jpg", draft_size=DRAFT)
    return fast, slow


@pytest.mark.parametrize("orientation", [None, 3, 6, 8])
def test_same_pixels_size_and_orientation_as_pillow(orientation, monkeypatch):
    data = jpeg(big(skdata.astronaut()), orientation)
    fast, slow = both(data, monkeypatch)
    assert fast.mode == slow.mode == "RGB"
    assert fast.size == slow.size and min(fast.size) >= DRAFT
    assert original_size(fast) == original_size(slow)
    diff = np.abs(np.asarray(fast, np.int16) - np.asarray(slow, np.int16))
    assert diff.mean() < 1.0, diff.mean()


def test_greyscale_and_cmyk(monkeypatch):
    grey = jpeg(big(skdata.camera(), 2))
    fast, slow = both(grey, monkeypatch)
    assert fast.mode == "RGB" and fast.size == slow.size
    assert np.abs(np.asarray(fast, np.int16) - np.asarray(slow, np.int16)).mean() < 1.0
    cmyk = jpeg(big(skdata.coffee(), 2).convert("CMYK"))
    fast, slow = both(cmyk, monkeypatch)  # simplejpeg does not convert CMYK: Pillow decodes it
    assert fast.mode == "RGB" and fast.size == slow.size
    assert np.array_equal(np.asarray(fast), np.asarray(slow))


def test_damaged_jpeg_is_still_a_one_line_error(monkeypatch):
    data = jpeg(big(skdata.astronaut()))
    monkeypatch.setattr(imaging, "USE_SIMPLEJPEG", True)
    with pytest.raises(imaging.ImageLoadError) as e:
        decode_image(data[:2000], "cut.jpg", draft_size=DRAFT)
    assert "cut.jpg" in str(e.value) and "\n" not in str(e.value)
