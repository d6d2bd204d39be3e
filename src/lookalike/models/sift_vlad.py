"""`sift-vlad`: SIFT descriptors (OpenCV) aggregated with a VLAD codebook learned from the
library's own images, the classic "same keypoints" baseline.

Every image gets SIFT descriptors at detected keypoints and on a dense grid (so flat or tiny
images still have some), as RootSIFT. VLAD sums each descriptor's residual to its nearest
codeword; the result is intra-normalised per codeword, power-normalised (signed sqrt) and
L2-normalised. The codebook is the extractor's state: `Library` fits it on a sample of the
images being indexed and stores it in the library directory."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import Conflict, InvalidQuery, ModelMismatch
from .base import BatchEmbedMixin, Features, l2_normalize
from .preprocess import resize_square_grey

SIZE = 128  # greyscale side length keypoints are found on
CODEWORDS = 32
DESCRIPTOR_DIM = 128
MAX_KEYPOINTS = 150  # strongest detected keypoints, on top of the dense grid
GRID_STEP = 16  # dense keypoints every 16 px, 8 x 8 of them
MAX_FIT_DESCRIPTORS = 60_000
STATE_FILE = "sift-vlad-codebook.npy"


class SiftVladExtractor(BatchEmbedMixin):
    name = "sift-vlad"
    dim = CODEWORDS * DESCRIPTOR_DIM

    def __init__(self, state_dir: Path | None = None) -> None:
        self.codebook: np.ndarray | None = None
        self._local = threading.local()  # OpenCV detectors are not shared between threads
        if state_dir is not None and (Path(state_dir) / STATE_FILE).exists():
            self.load_state(Path(state_dir))

    @property
    def draft_size(self) -> int | None:
        return SIZE

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return resize_square_grey(image, SIZE)

    # -- state ----------------------------------------------------------------------------
    def is_fitted(self) -> bool:
        return self.codebook is not None

    def fit(self, images: Sequence[Image.Image]) -> None:
        """Learn the codebook (k-means on RootSIFT descriptors) from these images."""
        from sklearn.cluster import MiniBatchKMeans

        descs = [self.descriptors(self.preprocess(im)) for im in images]
        data = np.concatenate(descs) if descs else np.zeros((0, DESCRIPTOR_DIM), np.float32)
        if len(data) < CODEWORDS:
            raise InvalidQuery(f"sift-vlad needs more images to learn its codebook (got {len(images)})")
        rng = np.random.default_rng(0)
        if len(data) > MAX_FIT_DESCRIPTORS:
            data = data[rng.choice(len(data), MAX_FIT_DESCRIPTORS, replace=False)]
        km = MiniBatchKMeans(n_clusters=CODEWORDS, random_state=0, n_init=3, batch_size=4096).fit(data)
        self.codebook = km.cluster_centers_.astype(np.float32)

    def save_state(self, directory: Path) -> None:
        if self.codebook is None:
            raise Conflict("sift-vlad has no codebook to save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (STATE_FILE + ".tmp.npy")
        np.save(tmp, self.codebook)
        tmp.replace(directory / STATE_FILE)

    def load_state(self, directory: Path) -> None:
        codebook = np.load(Path(directory) / STATE_FILE)
        if codebook.shape != (CODEWORDS, DESCRIPTOR_DIM):
            raise ModelMismatch(f"{directory / STATE_FILE}: codebook has shape {codebook.shape}, expected {(CODEWORDS, DESCRIPTOR_DIM)}")
        self.codebook = codebook.astype(np.float32)

    # -- features -------------------------------------------------------------------------
    def descriptors(self, grey: np.ndarray) -> np.ndarray:
        """RootSIFT descriptors [n, 128] of one preprocessed image."""
        import cv2

        sift = getattr(self._local, "sift", None)
        if sift is None:
            sift = self._local.sift = cv2.SIFT.create(nfeatures=MAX_KEYPOINTS)
        keypoints = list(sift.detect(grey, None))
        half = GRID_STEP // 2
        keypoints += [cv2.KeyPoint(float(x), float(y), float(GRID_STEP))
                      for y in range(half, SIZE, GRID_STEP) for x in range(half, SIZE, GRID_STEP)]
        _, desc = sift.compute(grey, keypoints)
        desc = desc.astype(np.float32)
        # RootSIFT: Hellinger kernel on the descriptor histograms.
        return np.sqrt(desc / np.maximum(desc.sum(axis=1, keepdims=True), 1e-12))

    def embed_batch(self, inputs: np.ndarray) -> Features:
        if self.codebook is None:
            raise Conflict("sift-vlad has no codebook yet: it learns one from the images it indexes first")
        vectors = np.stack([self._vlad(self.descriptors(g)) for g in inputs]) if len(inputs) else np.zeros((0, self.dim), np.float32)
        return Features(vectors=vectors, tags=[[] for _ in range(len(inputs))])

    def _vlad(self, desc: np.ndarray) -> np.ndarray:
        cb = self.codebook
        assert cb is not None
        dists = (desc ** 2).sum(1)[:, None] - 2 * desc @ cb.T + (cb ** 2).sum(1)[None]
        nearest = dists.argmin(axis=1)
        vlad = np.zeros_like(cb)
        np.add.at(vlad, nearest, desc - cb[nearest])
        vlad = l2_normalize(vlad)  # intra-normalisation: bursty codewords don't dominate
        vlad = np.sign(vlad) * np.sqrt(np.abs(vlad))  # power normalisation
        return l2_normalize(vlad.ravel())
