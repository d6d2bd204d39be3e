"""Exact top-k by cosine similarity over the in-memory matrix of the embedded store."""

from __future__ import annotations

import numpy as np

from ..base import ScoredIds


def exact_top_k(ids: np.ndarray, matrix: np.ndarray, queries: np.ndarray, k: int,
                allowed: np.ndarray) -> list[ScoredIds]:
    """Best `k` per query among rows where `allowed` (bool mask) holds; score desc, then id."""
    n_ok = int(allowed.sum())
    k = min(k, n_ok)
    if k <= 0:
        return [[] for _ in queries]
    rows = np.flatnonzero(allowed)
    # Score only the allowed rows: a selective filter makes this much cheaper than the full matrix.
    sub_ids = ids[rows]
    scores = queries @ matrix[rows].T if n_ok < len(ids) else queries @ matrix.T
    out: list[ScoredIds] = []
    for row in scores:
        top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
        top = top[np.lexsort((sub_ids[top], -row[top]))]
        out.append([(int(sub_ids[j]), float(row[j])) for j in top[:k]])
    return out
