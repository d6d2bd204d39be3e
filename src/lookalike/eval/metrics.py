"""Retrieval metrics over ranked results, shared by `lookalike eval`, fine-tuning and tests.

Conventions (documented in the README):
- AP@k = (1 / min(k, R)) * sum_{i<=k} P@i * rel_i, R = relevant items in the gallery;
  mAP (no k) is the same over the full ranking, divided by R.
- recall@k = fraction of queries with at least one relevant item in the top k (the usual
  "Recall@K" of image retrieval); precision@k = mean fraction of relevant items in the top k.
- The query itself is never counted: callers pass `exclude` (its gallery index) when the
  query is also in the gallery.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def average_precision(relevant: np.ndarray, n_relevant: int, k: int | None = None) -> float:
    """AP of one ranking. `relevant`: booleans in rank order (at least k long, or the whole
    ranking); `n_relevant`: relevant items in the whole gallery."""
    rel = np.asarray(relevant, dtype=bool)
    if k is not None:
        rel = rel[:k]
    denom = min(k, n_relevant) if k is not None else n_relevant
    if denom == 0:
        return 0.0
    hits = np.cumsum(rel)
    precision_at_hits = hits[rel] / (np.flatnonzero(rel) + 1)
    return float(precision_at_hits.sum() / denom)


@dataclass
class RetrievalResult:
    map_at: dict[int, float]  # k -> mAP@k
    map_full: float | None  # mAP over the full ranking (None if not computed)
    recall_at: dict[int, float]
    precision_at: dict[int, float]
    per_class_ap: dict[int, float] = field(default_factory=dict)  # label -> mean AP@max(k)
    n_queries: int = 0

    def to_dict(self) -> dict:
        return {
            "map_at": {str(k): v for k, v in self.map_at.items()},
            "map": self.map_full,
            "recall_at": {str(k): v for k, v in self.recall_at.items()},
            "precision_at": {str(k): v for k, v in self.precision_at.items()},
            "per_class_ap": {str(c): v for c, v in self.per_class_ap.items()},
            "n_queries": self.n_queries,
        }


def rank_gallery(queries: np.ndarray, gallery: np.ndarray, k: int | None,
                 exclude: np.ndarray | None = None, chunk: int = 256) -> np.ndarray:
    """Indices of the gallery by descending cosine similarity for each query (rows must be
    L2-normalised). `exclude[i]` (>= 0) is dropped from query i's ranking, which then holds
    at most m-1 items (never the excluded one, even when k >= m). k=None ranks all."""
    n, m = len(queries), len(gallery)
    valid = m - 1 if exclude is not None and (np.asarray(exclude) >= 0).any() else m
    width = valid if k is None else min(k, valid)
    out = np.empty((n, width), dtype=np.int64)
    for s in range(0, n, chunk):
        scores = queries[s:s + chunk] @ gallery.T
        if exclude is not None:
            rows = np.arange(len(scores))
            ex = exclude[s:s + chunk]
            mask = ex >= 0
            scores[rows[mask], ex[mask]] = -np.inf
        if k is None or width >= m:
            order = np.argsort(-scores, axis=1, kind="stable")
        else:
            part = np.argpartition(-scores, width - 1, axis=1)[:, :width]
            sub = np.take_along_axis(scores, part, axis=1)
            order = np.take_along_axis(part, np.argsort(-sub, axis=1, kind="stable"), axis=1)
        out[s:s + chunk] = order[:, :width]
    return out


def evaluate_rankings(ranked: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray,
                      ks: tuple[int, ...] = (1, 5, 10, 100), map_ks: tuple[int, ...] = (100,),
                      exclude: np.ndarray | None = None, full: bool = False) -> RetrievalResult:
    """Metrics from rankings (`rank_gallery` output). With `full`, rankings must cover the
    whole gallery (minus the excluded query) and mAP over the full ranking is computed."""
    query_labels = np.asarray(query_labels)
    gallery_labels = np.asarray(gallery_labels)
    classes, counts = np.unique(gallery_labels, return_counts=True)
    n_in_gallery = dict(zip(classes.tolist(), counts.tolist()))
    rel = gallery_labels[ranked] == query_labels[:, None]
    n_rel = np.array([n_in_gallery.get(q, 0) for q in query_labels.tolist()])
    if exclude is not None:  # the query itself is in the gallery but not a result
        n_rel = n_rel - ((exclude >= 0) & (gallery_labels[np.maximum(exclude, 0)] == query_labels))
    map_at = {k: float(np.mean([average_precision(r, nr, k) for r, nr in zip(rel, n_rel)])) for k in map_ks}
    map_full = float(np.mean([average_precision(r, nr) for r, nr in zip(rel, n_rel)])) if full else None
    recall_at = {k: float(rel[:, :k].any(axis=1).mean()) for k in ks if k <= rel.shape[1]}
    precision_at = {k: float(rel[:, :k].mean()) for k in ks if k <= rel.shape[1]}
    kmax = max(map_ks)
    aps = np.array([average_precision(r, nr, kmax) for r, nr in zip(rel, n_rel)])
    per_class = {int(c) if np.issubdtype(type(c), np.integer) else c: float(aps[query_labels == c].mean())
                 for c in np.unique(query_labels)}
    return RetrievalResult(map_at, map_full, recall_at, precision_at, per_class, len(query_labels))


def evaluate_embeddings(query_vecs: np.ndarray, query_labels: np.ndarray, gallery_vecs: np.ndarray,
                        gallery_labels: np.ndarray, exclude: np.ndarray | None = None,
                        ks: tuple[int, ...] = (1, 5, 10, 100), map_ks: tuple[int, ...] = (100,),
                        full: bool = False) -> RetrievalResult:
    """Rank the gallery for every query by cosine similarity and compute the metrics."""
    depth = None if full else max(max(ks), max(map_ks))
    ranked = rank_gallery(query_vecs, gallery_vecs, depth, exclude)
    return evaluate_rankings(ranked, query_labels, gallery_labels, ks, map_ks, exclude, full)


RECALL_LEVELS = np.linspace(0.0, 1.0, 11)


def precision_recall_curve(ranked: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray,
                           exclude: np.ndarray | None = None,
                           levels: np.ndarray = RECALL_LEVELS) -> np.ndarray:
    """Mean interpolated precision at each recall level (precision at recall r = the best
    precision at any rank reaching recall >= r, as in PASCAL VOC). `ranked` must cover the
    whole gallery (minus the excluded query) for recall to reach 1."""
    query_labels = np.asarray(query_labels)
    gallery_labels = np.asarray(gallery_labels)
    rel = gallery_labels[ranked] == query_labels[:, None]
    n_rel = (gallery_labels[None, :] == query_labels[:, None]).sum(axis=1)
    if exclude is not None:
        n_rel = n_rel - ((exclude >= 0) & (gallery_labels[np.maximum(exclude, 0)] == query_labels))
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, rel.shape[1] + 1)
    recall = hits / np.maximum(n_rel, 1)[:, None]
    # Interpolate: best precision at this rank or any later one.
    best_after = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros((len(ranked), len(levels)))
    for j, r in enumerate(levels):
        reached = recall >= r - 1e-12
        first = reached.argmax(axis=1)
        ok = reached.any(axis=1) & (n_rel > 0)
        out[ok, j] = best_after[ok, first[ok]]
    return out.mean(axis=0)


def near_duplicate_recall(ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = (1, 10)) -> dict[int, float]:
    """Fraction of queries whose own original (`targets[i]`, a gallery index) is in the top k."""
    found = ranked == np.asarray(targets)[:, None]
    return {k: float(found[:, :k].any(axis=1).mean()) for k in ks if k <= ranked.shape[1]}


def paired_change_interval(per_query: list[tuple[np.ndarray, np.ndarray]], rounds: int = 2000, seed: int = 0,
                           level: float = 0.95) -> tuple[float, float, float]:
    """The change in mean score from `a` to `b`, with a paired bootstrap interval.

    `per_query`: one (a, b) pair of per-query scores per domain, the same queries in both (the
    suite's domains). Each round resamples every domain's queries with replacement and
    takes the mean over domains of the per-domain mean change, so one domain gives that
    domain's interval and several give the suite mean's. Returns (change, low, high)."""
    if not per_query or any(len(a) != len(b) or not len(a) for a, b in per_query):
        raise ValueError("each domain needs the same queries, at least one, in both methods")
    rng = np.random.default_rng(seed)
    diffs = [np.asarray(b, np.float64) - np.asarray(a, np.float64) for a, b in per_query]
    change = float(np.mean([d.mean() for d in diffs]))
    rounds_means = np.zeros(rounds)
    for d in diffs:
        rounds_means += d[rng.integers(0, len(d), size=(rounds, len(d)))].mean(axis=1)
    rounds_means /= len(diffs)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(rounds_means, [tail, 100 - tail])
    return change, float(low), float(high)
