"""The one protocol every feature extractor implements, deep or handcrafted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from PIL import Image

# (label, probability) pairs, most likely first.
Tags = list[tuple[str, float]]


@dataclass
class Features:
    """Output of one batch: L2-normalised float32 vectors, plus per-image tags where the
    model has a classifier head (empty lists otherwise)."""

    vectors: np.ndarray
    tags: list[Tags] = field(default_factory=list)


@runtime_checkable
class FeatureExtractor(Protocol):
    name: str
    dim: int

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB image -> one model input. Cheap and thread-safe: the indexer runs it in
        worker threads, overlapped with `embed_batch` on the main thread."""
        ...

    def embed_batch(self, inputs: np.ndarray) -> Features:
        """A stack of `preprocess` outputs -> features."""
        ...

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB images -> float32 [n, dim], each row L2-normalised."""
        ...

    @property
    def draft_size(self) -> int | None:
        """Short-side size JPEG decoding may be reduced to without losing detail the model
        sees (None: decode at full size)."""
        ...


@runtime_checkable
class TrainableExtractor(Protocol):
    """An extractor with state learned from the library itself (e.g. a codebook). The
    library calls `fit` on a sample before the first embedding and persists the state."""

    def is_fitted(self) -> bool: ...
    def fit(self, images: Sequence[Image.Image]) -> None: ...
    def save_state(self, directory: Path) -> None: ...
    def load_state(self, directory: Path) -> None: ...


def for_indexing(extractor: FeatureExtractor) -> FeatureExtractor:
    """The extractor to run bulk indexing with: an ONNX model's indexing session
    (OnnxExtractor.for_indexing, its thread count a setting); others unchanged."""
    bulk = getattr(extractor, "for_indexing", None)
    return bulk() if bulk is not None else extractor


def configure_runtime(extractor: FeatureExtractor, threads: int | None = None, accelerator: bool = False) -> None:
    """Before first use: an ONNX Runtime model's threads and execution provider
    (OnnxExtractor.configure); models without a runtime to set are left as they are."""
    configure = getattr(extractor, "configure", None)
    if configure is not None:
        configure(threads=threads, accelerator=accelerator)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class BatchEmbedMixin:
    """`embed` in terms of `preprocess` + `embed_batch`, for extractors that have both."""

    def embed(self: FeatureExtractor, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = np.stack([self.preprocess(im) for im in images])
        return self.embed_batch(batch).vectors
