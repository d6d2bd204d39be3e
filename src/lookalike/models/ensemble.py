"""Two bundled networks as one model: each image's EfficientNet-Lite0 and Lite1 vectors (GeM,
each L2-normalised) concatenated and scaled by 1/sqrt(2), so the cosine of two images is the
mean of the two networks' cosines.

Measured on the six-domain suite (docs/evaluation.md): with query expansion, +4.1 points of
mAP@10 over plain Lite0 on two draws of queries (brain slices +11.9, digits +9 to +10; icons
level within noise), for about 2.5x the embedding time. Tags and explain's heat maps come from Lite0, the first
part of the vector."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .base import BatchEmbedMixin, Features, Tags, l2_normalize
from .onnx_extractor import OnnxExtractor

_SCALE = np.float32(1 / np.sqrt(2))


class EnsembleExtractor(BatchEmbedMixin):
    """`first` and `second` run on every image; `first` also gives tags and feature maps."""

    def __init__(self, name: str, first: OnnxExtractor, second: OnnxExtractor) -> None:
        self.name = name
        self.first, self.second = first, second
        self.dim = first.dim + second.dim
        self._split = first.input_size * first.input_size * 3  # where `preprocess` output changes model
        self._indexing: EnsembleExtractor | None = None

    @property
    def draft_size(self) -> int | None:
        # Lite0's: its part (tags, explain, duplicates) then matches an effnet-lite0 library's
        # exactly; Lite1 resizes the same decoded picture from at least 224 px to 240.
        return self.first.draft_size

    @property
    def labels(self) -> list[str] | None:
        return self.first.labels

    def for_indexing(self) -> EnsembleExtractor:
        """Both networks' indexing sessions (OnnxExtractor.for_indexing), made once."""
        if self._indexing is None:
            self._indexing = EnsembleExtractor(self.name, self.first.for_indexing(), self.second.for_indexing())
            self._indexing._indexing = self._indexing
        return self._indexing

    def configure(self, threads: int | None = None, accelerator: bool = False) -> None:
        self.first.configure(threads, accelerator)
        self.second.configure(threads, accelerator)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        # Each network's own resize of the original image, flattened side by side (one array per
        # image, so the indexer can stack them like any model's inputs).
        return np.concatenate([self.first.preprocess(image).ravel(), self.second.preprocess(image).ravel()])

    def _inputs(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, a, b = len(inputs), self.first.input_size, self.second.input_size
        return inputs[:, :self._split].reshape(n, a, a, 3), inputs[:, self._split:].reshape(n, b, b, 3)

    def embed_batch(self, inputs: np.ndarray) -> Features:
        one, two = self._inputs(np.ascontiguousarray(inputs, dtype=np.uint8))
        first = self.first.embed_batch(one)
        second = self.second.embed_batch(two)
        return Features(vectors=self.join(first.vectors, second.vectors), tags=first.tags)

    def classify(self, images: list[Image.Image]) -> list[Tags]:
        return self.first.classify(images)

    @property
    def has_feature_maps(self) -> bool:
        return self.first.has_feature_maps

    def feature_maps(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(the pair's embeddings, Lite0's last feature maps): explain scores by the search's
        own cosine and draws Lite0's part of it (engine/explain.py uses the leading dims)."""
        first, fmaps = self.first.feature_maps(images)
        return self.join(first, self.second.embed(images)), fmaps

    @staticmethod
    def join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The pair's vectors from each network's own (GeM) vectors."""
        return np.hstack([l2_normalize(a), l2_normalize(b)]).astype(np.float32) * _SCALE
