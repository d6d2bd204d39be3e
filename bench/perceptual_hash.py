"""Perceptual hashes: 64-bit fingerprints of an image's coarse structure that survive
re-encoding, resizing and light changes. bench/duplicates_thresholds.py measures them as the
second signal for near-duplicates; they break on 5-10% crops, so duplicate detection
confirms near-duplicates with keypoints.py instead."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

_SIZE = 32  # pHash: DCT of a 32x32 greyscale thumbnail, keep the 8x8 lowest frequencies
_LOW = 8


@lru_cache(maxsize=1)
def _dct_matrix(n: int = _SIZE) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    m[0] /= np.sqrt(2)
    return (m * np.sqrt(2 / n)).astype(np.float64)


def phash(im: Image.Image) -> int:
    """DCT perceptual hash (as in pHash/imagehash): bit i is set when low-frequency DCT
    coefficient i is above their median."""
    grey = np.asarray(im.convert("L").resize((_SIZE, _SIZE), Image.Resampling.LANCZOS), dtype=np.float64)
    d = _dct_matrix()
    low = (d @ grey @ d.T)[:_LOW, :_LOW].ravel()
    return _bits_to_int(low > np.median(low))


def dhash(im: Image.Image) -> int:
    """Difference hash: bit set where a pixel is brighter than its right neighbour (9x8 thumbnail)."""
    grey = np.asarray(im.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return _bits_to_int((grey[:, 1:] > grey[:, :-1]).ravel())


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _bits_to_int(bits: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in bits), 2)
