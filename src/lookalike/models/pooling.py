"""Pooling a CNN feature map [n, c, h, w] into one vector per image, in NumPy.

The default models pool inside their ONNX graph; these are for the feature options the
suite measures (`lookalike eval suite --methods effnet-lite0+rmac`, eval/suite.py) and for
bench/feature_search.py, which pools cached feature maps every way at no network cost."""

from __future__ import annotations

import math

import numpy as np

from .base import l2_normalize


def avg_pool(fmap: np.ndarray) -> np.ndarray:
    return fmap.mean(axis=(2, 3))


def gem_pool(fmap: np.ndarray, p: float = 3.0) -> np.ndarray:
    """Generalised mean (Radenovic et al.): p=1 is the average, p -> inf the maximum."""
    if math.isinf(p):
        return fmap.max(axis=(2, 3))
    return np.power(np.power(np.maximum(fmap, 1e-6), p).mean(axis=(2, 3)), 1.0 / p)


def rmac_regions(side: int, levels: int = 3) -> list[tuple[int, int, int]]:
    """Square regions (top, left, width) of a side x side map, R-MAC style (Tolias et al.):
    level l has l x l regions of width 2*side/(l+1), evenly spread, about 40 % overlap."""
    regions: list[tuple[int, int, int]] = []
    for level in range(1, levels + 1):
        width = max(1, int(2 * side / (level + 1)))
        starts = [0] if level == 1 else np.round(np.linspace(0, side - width, level)).astype(int).tolist()
        regions.extend((top, left, width) for top in starts for left in starts)
    return regions


def rmac_pool(fmap: np.ndarray, p: float = math.inf, levels: int = 3) -> np.ndarray:
    """Regional descriptors: each region pooled (max, or GeM p) and L2-normalised, then
    summed, so a crop or an occluded part still matches the regions it shares."""
    side = min(fmap.shape[2], fmap.shape[3])
    total = np.zeros(fmap.shape[:2], np.float32)
    for top, left, width in rmac_regions(side, levels):
        total += l2_normalize(gem_pool(fmap[:, :, top:top + width, left:left + width], p))
    return total


