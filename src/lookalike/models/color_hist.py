"""`color-hist`: a joint HSV colour histogram, the classic "looks the same colour" baseline."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import BatchEmbedMixin, Features
from .preprocess import resize_square

# Hue x saturation x value bins. Value gets the most bins so that greyscale images (where
# hue and saturation carry nothing) still get a 12-bin brightness histogram.
BINS = (8, 3, 12)
SIZE = 64  # pixels per side the histogram is computed on: plenty for colour statistics


class ColorHistExtractor(BatchEmbedMixin):
    name = "color-hist"
    dim = BINS[0] * BINS[1] * BINS[2]

    @property
    def draft_size(self) -> int | None:
        return SIZE

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return resize_square(image, SIZE)

    def embed_batch(self, inputs: np.ndarray) -> Features:
        from skimage.color import rgb2hsv

        n = len(inputs)
        hsv = rgb2hsv(np.asarray(inputs, dtype=np.uint8).reshape(n, -1, 1, 3)).reshape(n, -1, 3)
        bins = np.array(BINS)
        idx = np.minimum((hsv * bins).astype(np.int64), bins - 1)
        flat = (idx[..., 0] * BINS[1] + idx[..., 1]) * BINS[2] + idx[..., 2]
        flat += np.arange(n)[:, None] * self.dim
        hist = np.bincount(flat.ravel(), minlength=n * self.dim).reshape(n, self.dim).astype(np.float32)
        # Hellinger kernel: sqrt of the L1-normalised histogram has unit L2 norm, so the
        # cosine similarity of two vectors is the Bhattacharyya coefficient of the histograms.
        vectors = np.sqrt(hist / hist.sum(axis=1, keepdims=True))
        return Features(vectors=vectors.astype(np.float32), tags=[[] for _ in range(n)])
