"""Re-ranking by query expansion: alpha-QE (Radenovic et al., "Fine-tuning CNN image retrieval
with no human annotation") and, for measuring, database-side augmentation (DBA).

alpha-QE: the query's top `k` results are averaged into it, each weighted by its cosine to
the query raised to `alpha` (the query itself weighs 1), and the library is searched again
with that vector. Images of the query's kind that the first search ranked just below the top
get pulled up by the neighbours they share. Search (Library.search_vector) keeps the first
search's best match and takes the other k-1 from the second search, all ordered by their
cosine to the original query, so scores, confidence and thresholds keep their meaning.
Nothing is stored, so it works on any library and store.

DBA applies the same mix to every stored vector with its own neighbours; it would have to be
recomputed as the library changes, so it is measured (bench/rerank_sweep.py, the suite's
`+dba` option) but not part of search."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidQuery
from ..models import l2_normalize

RERANK_MODES = ("none", "qe")
# On by default: +1.3 points mean mAP@10 on two draws of the suite, no domain lost beyond noise
# (docs/evaluation.md#re-ranking).
DEFAULT_RERANK = "qe"


@dataclass(frozen=True)
class QueryExpansion:
    """alpha-QE settings: `k` top results mixed into the query, weighted by cosine**`alpha`;
    the middle of the settings that lose no suite domain beyond noise (bench/rerank_sweep.py)."""

    k: int = 3
    alpha: float = 3.0


def check_rerank(value: str | None, name: str = "rerank") -> QueryExpansion | None:
    """A user's `rerank` option: "qe" -> QueryExpansion, "none" -> None, None -> DEFAULT_RERANK;
    anything else is InvalidQuery naming the field."""
    mode = DEFAULT_RERANK if value is None else str(value).strip().lower()
    if mode not in RERANK_MODES:
        raise InvalidQuery(f"{name}: unknown value {value!r} (use one of: {', '.join(RERANK_MODES)})")
    return QueryExpansion() if mode == "qe" else None


def _weights(sims: np.ndarray, alpha: float) -> np.ndarray:
    # Negative cosines add nothing (a neighbour pointing away should not pull the query).
    pos = np.clip(sims, 0.0, None)
    return np.where(pos > 0, pos ** alpha, 0.0).astype(np.float32)


def expand_queries(queries: np.ndarray, neighbours: np.ndarray, sims: np.ndarray, alpha: float) -> np.ndarray:
    """alpha-QE: queries (n, d), their top results' vectors (n, k, d) and cosines (n, k) ->
    the expanded, L2-normalised queries (n, d)."""
    w = _weights(np.asarray(sims, np.float32), alpha)
    mixed = np.asarray(queries, np.float32) + np.einsum("nk,nkd->nd", w, np.asarray(neighbours, np.float32))
    return l2_normalize(mixed)


def augment_database(gallery: np.ndarray, k: int, alpha: float, chunk: int = 1024) -> np.ndarray:
    """DBA: each row replaced by itself plus its `k` nearest other rows, weighted as in
    alpha-QE, L2-normalised. Exact, O(n^2 d): for measuring on the suite's galleries."""
    g = np.asarray(gallery, np.float32)
    n = len(g)
    k = min(k, n - 1)
    if k <= 0:
        return g.copy()
    out = np.empty_like(g)
    for s in range(0, n, chunk):
        sims = g[s:s + chunk] @ g.T
        rows = np.arange(len(sims))
        sims[rows, s + rows] = -np.inf  # not itself: it weighs 1 below
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        out[s:s + chunk] = expand_queries(g[s:s + chunk], g[top], np.take_along_axis(sims, top, axis=1), alpha)
    return out
