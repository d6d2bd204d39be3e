"""Fuzzing the image loader with Hypothesis: whatever the bytes or array, the result is an
RGB image or an `ImageLoadError` with a one-line reason; never another exception, never a
hang (each input has a deadline). LOOKALIKE_FUZZ_EXAMPLES=10000 runs a longer campaign."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from lookalike.errors import ImageLoadError
from lookalike.imaging import decode_image, load_image
from tests.support.badfiles import png_raw

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning", "ignore::UserWarning")

EXAMPLES = int(os.environ.get("LOOKALIKE_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), database=None, derandomize=EXAMPLES <= 200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seeds() -> list[bytes]:
    """Valid encodings of a real photo in every format we read: mutating them reaches deep
    into each decoder, where random bytes would stop at the signature check."""
    from skimage import data

    im = Image.fromarray(data.chelsea()).resize((48, 32))
    out = []
    for fmt, kw in [("JPEG", {}), ("JPEG", {"progressive": True}), ("PNG", {}), ("GIF", {}), ("WEBP", {}),
                    ("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}),
                    ("ICO", {}), ("PNG", {"mode": "P"}), ("PNG", {"mode": "LA"})]:
        buf = io.BytesIO()
        src = im.convert(kw.pop("mode")) if "mode" in kw else im
        src.save(buf, fmt, **kw)
        out.append(buf.getvalue())
    return out


SEEDS = _seeds()


def _check(data: bytes, draft: int | None = None) -> None:
    try:
        im = decode_image(data, "fuzz", draft_size=draft)
    except ImageLoadError as e:
        assert e.reason and "\n" not in e.reason
        return
    assert im.mode == "RGB" and im.width >= 1 and im.height >= 1
    np.asarray(im)  # the pixels are really there


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "truncate", "dup"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=64))
        elif op == "truncate":
            del data[i:]
        elif op == "dup":
            data[i:i] = data[i:i + draw(st.integers(1, 256))]
    return bytes(data)


@FUZZ
@given(mutated(), st.sampled_from([None, 224]))
def test_mutated_images(data, draft):
    _check(data, draft)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    _check(data)


@FUZZ
@given(st.integers(0, 70_000), st.integers(0, 70_000),
       st.sampled_from([(1, 0), (8, 0), (16, 0), (8, 2), (16, 2), (8, 3), (4, 3), (8, 4), (8, 6), (16, 6), (3, 2), (8, 9)]),
       st.binary(max_size=512))
def test_png_headers(width, height, depth_type, rows):
    """Hand-built PNGs with any claimed size and pixel format (including invalid ones)."""
    _check(png_raw(width, height, depth_type[0], depth_type[1], rows))


@FUZZ
@given(hnp.arrays(st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
                  st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=24),
                            st.tuples(st.integers(0, 24), st.integers(0, 24), st.integers(1, 5)))))
def test_arrays(arr):
    try:
        im = load_image(arr)
    except ImageLoadError as e:
        assert e.reason
        return
    assert im.mode == "RGB" and im.width >= 1 and im.height >= 1


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, -1e30, 1e30])
def test_arrays_with_non_finite_values(value):
    arr = np.full((4, 5, 3), value, dtype=np.float64)
    assert load_image(arr).size == (5, 4)
