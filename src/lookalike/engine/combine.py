"""Several query images, with weights and negative examples, made into one search.

Three ways were measured on Fashion-MNIST (bench/multi_query.py, docs/search.md):
- `mean`: the weighted mean of the positives' L2-normalised vectors, normalised again;
- `rocchio`: that mean minus `beta` times the mean of the negatives (Rocchio relevance
  feedback), normalised;
- `rrf`: one search per positive, merged by reciprocal rank fusion (negatives: their own
  searches' fused ranks are subtracted).
The library uses `rocchio` (= `mean` without negatives): best in that measurement and it
costs one search whatever the number of examples."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InvalidQuery
from ..models.base import l2_normalize

ROCCHIO_BETA = 0.25  # weight of the negatives' mean: best of 0.1/0.25/0.5/1 (bench/multi_query.py)
MAX_WEIGHT = 1e6  # relative weights: a million to one is already "only this one"
RRF_K = 60  # the usual reciprocal-rank-fusion constant (Cormack et al. 2009)


def check_weights(n_positive: int, weights: Sequence[float] | None) -> np.ndarray:
    """One positive weight per positive example (default: all 1)."""
    if weights is None or len(weights) == 0:
        return np.ones(n_positive, np.float32)
    if len(weights) != n_positive:
        raise InvalidQuery(f"{len(weights)} weights for {n_positive} query images: give one weight per image")
    w = np.asarray(weights, np.float64)
    if not np.all(np.isfinite(w)) or np.any(w <= 0) or np.any(w > MAX_WEIGHT):  # huge ones overflow the mean
        raise InvalidQuery(f"weights must be positive numbers up to {MAX_WEIGHT:g}")
    w = w.astype(np.float32)
    return w


def combine_vectors(positive: np.ndarray, negative: np.ndarray | None = None,
                    weights: Sequence[float] | None = None, beta: float = ROCCHIO_BETA) -> np.ndarray:
    """One L2-normalised query vector: weighted mean of the positives minus `beta` times the
    mean of the negatives (each input row normalised first, so no example dominates by norm)."""
    pos = l2_normalize(np.atleast_2d(positive))
    w = check_weights(len(pos), weights)
    q = (w[:, None] * pos).sum(0) / w.sum()
    if negative is not None and len(negative):
        q = q - beta * l2_normalize(np.atleast_2d(negative)).mean(0)
    return l2_normalize(q[None])[0]


def reciprocal_rank_fusion(positive: list[list[int]], negative: Sequence[list[int]] = (),
                           weights: Sequence[float] | None = None, k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked id lists: score(id) = sum_w w / (k + rank) over the positive lists, minus
    the same over the negative lists; best first."""
    w = check_weights(len(positive), weights)
    scores: dict[int, float] = {}
    for weight, ranked in zip(w, positive):
        for rank, id_ in enumerate(ranked, start=1):
            scores[id_] = scores.get(id_, 0.0) + float(weight) / (k + rank)
    for ranked in negative:
        for rank, id_ in enumerate(ranked, start=1):
            if id_ in scores:
                scores[id_] -= 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


