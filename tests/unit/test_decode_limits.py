"""The decode budget in imaging.py: only allowed formats reach a decoder, pixel and frame
limits are checked from the header before any pixel is decoded, and concurrent decodes share
a memory budget."""

from __future__ import annotations

import contextlib
import io
import struct
import threading
import time
import zlib
from typing import Iterator

import pytest
from PIL import Image

from lookalike.errors import Busy, ImageLoadError, InvalidQuery
from lookalike.imaging import ALLOWED_FORMATS, DecodeBudget, decode_budget, decode_image, encoded_format
from tests.support.hostile import big_png, jpeg_bytes


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_big_png_is_refused_from_its_header_in_milliseconds():
    bomb = big_png(12_000, 12_000)
    t0 = time.perf_counter()
    with pytest.raises(ImageLoadError, match="12000x12000 pixels exceeds the 40,000,000 pixel limit"):
        decode_image(bomb, "bomb.png", pixel_limit=40_000_000)
    assert time.perf_counter() - t0 < 0.5


def test_a_large_jpeg_is_checked_at_the_scale_it_is_decoded(photos):
    big = jpeg_bytes(photos["coffee"].resize((6000, 4000)))  # 24 MP
    with pytest.raises(ImageLoadError, match="pixel limit"):
        decode_image(big, "big.jpg", pixel_limit=10_000_000)
    small = decode_image(big, "big.jpg", draft_size=224, pixel_limit=10_000_000)  # decoded at 1/8: 750x500
    assert small.size == (750, 500) and small.info["original_size"] == (6000, 4000)


def test_too_many_frames_are_refused_unread():
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    actl = struct.pack(">II", 100_000, 0)  # an animated PNG claiming 100,000 frames
    apng = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"acTL", actl)
            + _chunk(b"IDAT", zlib.compress(b"\0" * (8 * 25))) + _chunk(b"IEND", b""))
    with pytest.raises(ImageLoadError, match="too many frames"):
        decode_image(apng, "anim.png")


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "PCX", "TGA", "SGI", "DDS", "IM"])
def test_formats_outside_the_list_are_not_decoded(photos, fmt):
    buf = io.BytesIO()
    photos["rocket"].resize((64, 48)).save(buf, fmt)
    assert encoded_format(buf.getvalue()) is None
    with pytest.raises(ImageLoadError, match="not an image"):
        decode_image(buf.getvalue(), f"x.{fmt.lower()}")


def test_postscript_never_reaches_ghostscript():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"
    assert Image.open(io.BytesIO(eps)).format == "EPS"  # Pillow alone would open it
    with pytest.raises(ImageLoadError, match="PostScript/EPS, which is not supported"):
        decode_image(eps, "x.eps")
    assert "EPS" not in ALLOWED_FORMATS


def test_the_decode_budget_bounds_concurrent_reservations():
    budget = DecodeBudget(100, wait_s=0.3)
    with held_elsewhere(budget, 70):
        with budget.reserve(30):  # fits beside the 70
            assert budget.used == 100
        t0 = time.monotonic()
        with pytest.raises(Busy):
            with budget.reserve(40):
                pass
        assert 0.25 < time.monotonic() - t0 < 1.0
    with budget.reserve(10_000):  # larger than the whole budget: decodes alone
        assert budget.used == 100
    assert budget.used == 0


def test_the_budget_variable_is_read_when_first_needed_not_at_import(monkeypatch):
    """A server or test that sets $LOOKALIKE_DECODE_BUDGET_MB after importing imaging gets that
    size: with 1 MB, half of it held elsewhere, a 512-px photo (about 1.8 MB to decode) waits
    and is refused; with the default budget it decodes at once."""
    from skimage import data

    photo = jpeg_bytes(Image.fromarray(data.astronaut()))
    assert decode_image(photo, "astronaut.jpg").size == (512, 512)
    monkeypatch.setenv("LOOKALIKE_DECODE_BUDGET_MB", "1")
    budget = decode_budget()
    assert budget.total == 1_000_000
    monkeypatch.setattr(budget, "wait_s", 0.2)
    with held_elsewhere(budget, 500_000):
        with pytest.raises(Busy):
            decode_image(photo, "astronaut.jpg")
    assert decode_image(photo, "astronaut.jpg").size == (512, 512)  # alone, it fits the whole budget
    monkeypatch.setenv("LOOKALIKE_DECODE_BUDGET_MB", "lots")
    with pytest.raises(InvalidQuery, match=r"\$LOOKALIKE_DECODE_BUDGET_MB must be a number of megabytes, got 'lots'"):
        decode_image(photo, "astronaut.jpg")


@contextlib.contextmanager
def held_elsewhere(budget: DecodeBudget, size: int) -> Iterator[None]:
    """`size` of `budget` reserved by another thread for as long as the block runs."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with budget.reserve(size):
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        yield
    finally:
        release.set()
        t.join()
