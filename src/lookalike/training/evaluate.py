"""Before/after retrieval scores of extractors on a labelled set (gallery = the whole set,
a seeded sample of it as queries, each query excluded from its own ranking)."""

from __future__ import annotations

import numpy as np

from ..eval.datasets import LabelledImages
from ..eval.metrics import RetrievalResult, evaluate_rankings, rank_gallery
from ..models import FeatureExtractor


def embed_all(extractor: FeatureExtractor, data: LabelledImages, batch_size: int = 128) -> np.ndarray:
    out = []
    for s in range(0, len(data), batch_size):
        batch = np.stack([extractor.preprocess(data.image(i)) for i in range(s, min(s + batch_size, len(data)))])
        out.append(extractor.embed_batch(batch).vectors)
    return np.concatenate(out)


def query_sample(n_images: int, n_queries: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_images, size=min(n_queries, n_images), replace=False))


def leave_one_out(vecs: np.ndarray, labels: np.ndarray, queries: np.ndarray, k: int = 100) -> RetrievalResult:
    """mAP@k and recall@1 of `queries` (indices) against the whole set minus each query.
    Ranks at most n-1 items: `evaluate_embeddings` would keep the excluded query (sorted last)
    in rankings of galleries of k items or fewer and count it as a hit."""
    depth = min(k, len(vecs) - 1)
    ranked = rank_gallery(vecs[queries], vecs, depth, exclude=queries)
    return evaluate_rankings(ranked, labels[queries], labels, ks=(1,), map_ks=(k,), exclude=queries)


def evaluate_extractor(extractor: FeatureExtractor, data: LabelledImages, n_queries: int = 1000,
                       seed: int = 0, vectors: np.ndarray | None = None) -> RetrievalResult:
    vecs = embed_all(extractor, data) if vectors is None else vectors
    q = query_sample(len(data), n_queries, seed)
    return leave_one_out(vecs, data.labels, q)
