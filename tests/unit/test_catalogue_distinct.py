"""`--distinct` on the catalogue: byte copies and near-duplicates of a better result are
dropped, near-duplicates judged by the model's own features (the default pair's first part)."""

from __future__ import annotations

import numpy as np

from lookalike.engine.catalogue.similar import distinct_order


def _pair(head: list[float], tail: list[float]) -> np.ndarray:
    """A two-part vector as the default pair stores it: each part unit length, joined / sqrt(2)."""
    h, t = np.array(head, np.float32), np.array(tail, np.float32)
    return np.concatenate([h / np.linalg.norm(h), t / np.linalg.norm(t)]) / np.sqrt(2)


def test_near_duplicates_are_judged_by_the_leading_features():
    vectors = np.stack([
        _pair([1, 0], [1, 0]),
        _pair([1, 0.05], [-1, 0]),  # the first one by its first part (cosine 0.999), its opposite by the second
        _pair([0, 1], [1, 1]),
        _pair([0, 1], [0, 1]),  # the third one by its first part; 0.85 over the whole vector
        _pair([-1, 0], [0, -1]),
    ])
    shas = ["a", "b", "c", "d", "a"]  # the last is a byte copy of the first
    assert distinct_order(shas, vectors, 5, head_dim=2) == [0, 2]
    assert distinct_order(shas, vectors, 5, head_dim=None) == [0, 1, 2, 3]  # whole vectors: no near-duplicates


def test_stops_at_k_and_keeps_the_best_first():
    vectors = np.eye(4, dtype=np.float32)
    assert distinct_order(["a", "b", "c", "d"], vectors, 2, head_dim=None) == [0, 1]
    assert distinct_order([], np.zeros((0, 4), np.float32), 3, head_dim=None) == []
