"""Runs any exported Lookalike ONNX model (bundled or fine-tuned) with ONNX Runtime.

Graph contract: input `images` uint8 [n, S, S, 3] (RGB, resized by `resize_square`);
output `embedding` float32 [n, dim] (L2-normalised) and, for models with an ImageNet head,
`probs` float32 [n, 1000]."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..config import cpu_threads
from .base import BatchEmbedMixin, Features, Tags, l2_normalize
from .preprocess import resize_square

# Class probabilities kept per image. Word search sums them over every class below a word
# ("dog": 118 breeds); the top 50 keep 94 % of such a word's probability mass on average,
# the top 5 only 74 % (bench/tag_topk.py, docs/search.md).
TOP_TAGS = 50


class OnnxExtractor(BatchEmbedMixin):
    def __init__(self, name: str, onnx_path: Path, input_size: int, dim: int,
                 labels: list[str] | None = None, threads: int | None = None,
                 feature_map_graph: Callable[[], Path] | None = None, spinning: bool = False,
                 indexing_threads: int | None = None) -> None:
        self.name = name
        self.dim = dim
        self.input_size = input_size
        self.onnx_path = Path(onnx_path)
        self.labels = labels
        self._threads = threads or cpu_threads()
        self._spinning = spinning  # True only to measure the old behaviour (bench/index_throughput.py)
        # Bulk indexing on fewer threads saved CPU under heavy load but cost 25 % of the
        # throughput on an idle machine (bench/index_throughput.py): all threads by default.
        self._indexing_threads = indexing_threads or self._threads
        self._indexing: OnnxExtractor | None = None
        self._providers = ["CPUExecutionProvider"]
        self._session = None
        self._lock = threading.Lock()
        self._feature_map_graph = feature_map_graph  # builds (once) the graph that also outputs the feature map
        self._fmap_session = None

    def configure(self, threads: int | None = None, accelerator: bool = False) -> None:
        """Before first use: intra-op threads, and the CUDA execution provider first when this
        onnxruntime build has one (`onnxruntime-gpu`) and `accelerator` is asked for."""
        if threads:
            self._threads = threads
        self._providers = gpu_providers() if accelerator else ["CPUExecutionProvider"]

    @property
    def providers(self) -> list[str]:
        return list(self._providers)

    @property
    def draft_size(self) -> int | None:
        return self.input_size

    @property
    def session(self):
        # Created on first use so `lookalike info` and friends never pay for it.
        with self._lock:
            if self._session is None:
                self._session = onnx_session(self.onnx_path, self._threads, self._spinning, self._providers)
            return self._session

    def for_indexing(self) -> OnnxExtractor:
        """The same model for bulk indexing on `indexing_threads` (default: all, so this same
        extractor); fewer leave cores to the decode threads, which saves CPU on a busy machine
        but slows indexing on an idle one (bench/index_throughput.py --indexing-threads). Same
        graph, same vectors; its own session, made once."""
        if self._indexing_threads == self._threads:
            return self
        with self._lock:
            if self._indexing is None:
                self._indexing = OnnxExtractor(self.name, self.onnx_path, self.input_size, self.dim, self.labels,
                                               self._indexing_threads, spinning=self._spinning,
                                               indexing_threads=self._indexing_threads)  # its own for_indexing()
                self._indexing._providers = list(self._providers)
            return self._indexing

    @property
    def has_feature_maps(self) -> bool:
        return self._feature_map_graph is not None

    def feature_maps(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings [n, dim], last feature maps [n, h, w, channels]) of the images, from a
        graph identical to the search graph plus the feature map output."""
        if self._feature_map_graph is None:
            raise ValueError(f"{self.name} has no feature-map graph")
        with self._lock:
            if self._fmap_session is None:
                self._fmap_session = onnx_session(self._feature_map_graph(), self._threads, self._spinning)
            sess = self._fmap_session
        assert sess is not None  # built above under the lock
        batch = np.stack([self.preprocess(im) for im in images])
        emb, fmap = sess.run(["embedding", "feature_map"], {"images": batch})
        return l2_normalize(emb), np.transpose(fmap, (0, 2, 3, 1))

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return resize_square(image, self.input_size)

    def embed_batch(self, inputs: np.ndarray) -> Features:
        sess = self.session
        wanted = ["embedding"] + (["probs"] if self.labels else [])
        outs = sess.run(wanted, {"images": np.ascontiguousarray(inputs, dtype=np.uint8)})
        vectors = l2_normalize(outs[0])
        tags = top_tags(outs[1], self.labels) if self.labels else [[] for _ in range(len(vectors))]
        return Features(vectors=vectors, tags=tags)

    def classify(self, images: list[Image.Image]) -> list[Tags]:
        batch = np.stack([self.preprocess(im) for im in images])
        return self.embed_batch(batch).tags


def gpu_providers() -> list[str]:
    """CUDA first where onnxruntime can use it, the CPU always as the fallback."""
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    return (["CUDAExecutionProvider"] if cuda else []) + ["CPUExecutionProvider"]


def onnx_session(path: Path, threads: int, spinning: bool = False, providers: list[str] | None = None):
    """An ONNX Runtime session as every model runs one (threads, sleeping pool, all graph optimisations)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spin-waiting for the next parallel section: spinning
    # burns the cores the indexer's decode threads (and other processes) need: more CPU per
    # image, and slower indexing and queries on a busy machine (bench/index_throughput.py).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers or ["CPUExecutionProvider"])


def top_tags(probs: np.ndarray, labels: list[str], k: int = TOP_TAGS) -> list[Tags]:
    """The k most likely classes per image, probabilities rounded to 4 decimals; classes that
    round to 0 are dropped (they could never change a ranking)."""
    idx = np.argsort(-probs, axis=1)[:, :k]
    return [[(labels[j], round(float(p[j]), 4)) for j in row if round(float(p[j]), 4) > 0] for p, row in zip(probs, idx)]
