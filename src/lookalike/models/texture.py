"""`texture`: uniform LBP histograms + HOG (scikit-image), the "same texture and edges" baseline."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import BatchEmbedMixin, Features, l2_normalize
from .preprocess import resize_square_grey

SIZE = 64  # greyscale side length the descriptors are computed on
LBP_POINTS, LBP_RADIUS = 8, 1
LBP_BINS = LBP_POINTS + 2  # "uniform" LBP codes: P + 1 uniform patterns + 1 for the rest
LBP_GRID = 2  # LBP histograms of the whole image and of each cell of a 2x2 grid (some layout)
HOG_CELL, HOG_BLOCK, HOG_ORIENTATIONS = 16, 2, 9
HOG_DIM = ((SIZE // HOG_CELL - HOG_BLOCK + 1) ** 2) * HOG_BLOCK * HOG_BLOCK * HOG_ORIENTATIONS
LBP_DIM = LBP_BINS * (1 + LBP_GRID * LBP_GRID)


class TextureExtractor(BatchEmbedMixin):
    name = "texture"
    dim = LBP_DIM + HOG_DIM

    @property
    def draft_size(self) -> int | None:
        return SIZE

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return resize_square_grey(image, SIZE)

    def embed_batch(self, inputs: np.ndarray) -> Features:
        vectors = np.stack([self._describe(img) for img in inputs]) if len(inputs) else np.zeros((0, self.dim), np.float32)
        return Features(vectors=vectors, tags=[[] for _ in range(len(inputs))])

    def _describe(self, img: np.ndarray) -> np.ndarray:
        from skimage.feature import hog, local_binary_pattern

        codes = local_binary_pattern(img, LBP_POINTS, LBP_RADIUS, method="uniform").astype(np.int64)
        step = SIZE // LBP_GRID
        regions = [codes] + [codes[r:r + step, c:c + step] for r in range(0, SIZE, step) for c in range(0, SIZE, step)]
        lbp = np.concatenate([np.bincount(reg.ravel(), minlength=LBP_BINS) / reg.size for reg in regions])
        hog_vec = hog(img, orientations=HOG_ORIENTATIONS, pixels_per_cell=(HOG_CELL, HOG_CELL),
                      cells_per_block=(HOG_BLOCK, HOG_BLOCK), block_norm="L2-Hys", feature_vector=True)
        # Each half gets unit norm (LBP via the Hellinger sqrt) so neither dominates the cosine.
        parts = [l2_normalize(np.sqrt(lbp)), l2_normalize(hog_vec)]
        return l2_normalize(np.concatenate(parts))  # also unit length when HOG is all zeros (a flat image)
