"""Similar items: a query (an item, a shopper's photo, any query `Library.search` takes) ->
ranked items with their fields, with the shop's rules applied:

- `where`: passed to the store's filtered search, so it holds before ranking, not after;
- `colour`: re-ranks the top candidates by (1 - w) * deep + w * colour similarity (colour.py);
- `collapse`: at most one result per value of a field (e.g. group_id: one per product family);
- `distinct`: drops a result that is a near-duplicate of a higher one (same bytes, or vectors
  with cosine >= DISTINCT_COSINE, compared as duplicates compare them: by the model's own
  features, the Lite0 part of the default pair's vectors, so the threshold means the same).
Candidates are fetched in growing pools, so `k` results come back whenever enough exist."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from ...errors import LookalikeError
from ...imaging import load_image
from ...models import model_info
from ...store import ImageRecord, SearchFilter
from ..duplicates import head_view
from ..query import resolve
from ..scan import printable
from .colour import SIZE as COLOUR_SIZE
from .colour import ColourStore, colour_signature, colour_weight
from .downloads import CACHE_DIR, DownloadCache
from .items import ITEM_PREFIX, item_id

DISTINCT_COSINE = 0.95
# Colour re-ranks only the best deep candidates: the style is decided first (a larger pool lets
# colour pull in items of other styles; bench/catalogue_eval.py measured this trade-off).
COLOUR_POOL = 3  # times k
MAX_POOL = 20_000


@dataclass
class ItemHit:
    rank: int
    id: int
    path: str
    score: float
    item: str | None  # the item id; None for an ordinary indexed file
    fields: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"rank": self.rank, "id": self.id, "path": printable(self.path, controls=False), "score": self.score,
                "item": self.item, "fields": self.fields}


def similar(lib, query, k: int = 10, *, where: str | SearchFilter | None = None, colour: str | float | None = "any",
            collapse: str | None = None, distinct: bool = False, min_score: float | None = None, ef: int | None = None,
            items_only: bool = True) -> list[ItemHit]:
    """`lib` is a `Library`; `query` anything `Library.search` takes, including "item:SKU".
    `where`: a filter expression over fields (docs/filters.md); `items_only`: never return
    ordinary indexed files of a library that holds both."""
    weight = colour_weight(colour)
    where = lib.where(where, SearchFilter(path_prefix=ITEM_PREFIX) if items_only else None)
    q = resolve(query, lib.store, lib.extractor.draft_size)
    vector = q.vector if q.vector is not None else lib.extractor.embed([q.image])[0]
    vector = np.asarray(vector, np.float32)[None]
    reranks = weight > 0 or collapse is not None or distinct
    pool = k if not reranks else (COLOUR_POOL * k if weight > 0 else max(4 * k, 50))
    colours = lib.colours if weight > 0 else None
    query_colour = _query_colour(lib, q, colours) if colours is not None else None
    while True:
        kwargs = {"ef": ef} if ef is not None else {}
        scored = lib.store.search(vector, pool, where, q.exclude, **kwargs)[0]
        records = lib.store.get([i for i, _ in scored])
        ranked = [(records[i], s) for i, s in scored if i in records]
        if colours is not None and query_colour is not None:
            signatures = colours.ensure({r.sha256: _loader(lib, r) for r, _ in ranked})
            ranked = [(r, (1 - weight) * s + weight * float(signatures[r.sha256] @ query_colour)
                       if r.sha256 in signatures else (1 - weight) * s) for r, s in ranked]
            ranked.sort(key=lambda pair: -pair[1])
        if min_score is not None:
            ranked = [(r, s) for r, s in ranked if s >= min_score]
        if collapse is not None:
            ranked = _collapse(ranked, collapse)
        if distinct:
            ranked = _distinct(lib, ranked, k)
        exhausted = len(scored) < pool or pool >= MAX_POOL
        if len(ranked) >= k or exhausted or not reranks:
            break
        pool = min(pool * 4, MAX_POOL)
    return [ItemHit(rank, int(r.id or 0), r.path, round(float(s), 6), item_id(r.path), r.fields)
            for rank, (r, s) in enumerate(ranked[:k], start=1)]


def _collapse(ranked: list[tuple[ImageRecord, float]], name: str) -> list[tuple[ImageRecord, float]]:
    seen: set = set()
    kept = []
    for r, s in ranked:
        value = r.fields.get(name)
        key = tuple(value) if isinstance(value, list) else value
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append((r, s))  # records without the field are each their own group
    return kept


def _distinct(lib, ranked: list[tuple[ImageRecord, float]], k: int) -> list[tuple[ImageRecord, float]]:
    if not ranked:
        return ranked
    vectors = lib.store.vectors([r.id for r, _ in ranked])
    keep = distinct_order([r.sha256 for r, _ in ranked], vectors, k, model_info(lib.model).head_dim)
    return [ranked[i] for i in keep]


def distinct_order(shas: list[str], vectors: np.ndarray, k: int, head_dim: int | None) -> list[int]:
    """Indices of the first k results, best first, that are neither a byte copy (same sha256)
    nor a near-duplicate (cosine >= DISTINCT_COSINE over the first `head_dim` dimensions,
    renormalised, as duplicates compare them) of a result kept before them."""
    vectors = head_view(head_dim)(vectors)
    kept: list[int] = []
    seen: set[str] = set()
    for i, sha in enumerate(shas):
        if sha in seen:
            continue
        if kept and float(np.max(vectors[kept] @ vectors[i])) >= DISTINCT_COSINE:
            continue
        kept.append(i)
        seen.add(sha)
        if len(kept) >= k:
            break
    return kept


def _query_colour(lib, q, colours: ColourStore) -> np.ndarray | None:
    if q.image is not None:
        return colour_signature(q.image)
    if not q.exclude:
        return None
    rec = lib.store.get(q.exclude[:1]).get(q.exclude[0])
    if rec is None:
        return None
    return colours.ensure({rec.sha256: _loader(lib, rec)}).get(rec.sha256)


def _loader(lib, rec: ImageRecord):
    """Loads a record's image for its colour signature: an item's local file or cached download,
    or an indexed file. None when it is gone."""
    def load() -> Image.Image | None:
        source = rec.fields.get("image") if item_id(rec.path) is not None else rec.path
        candidates = []
        if isinstance(source, str) and not source.startswith(("http://", "https://")):
            candidates.append(source)
        candidates.append(str(DownloadCache.blob_path_in(lib.directory / CACHE_DIR, rec.sha256)))
        for path in candidates:
            try:
                return load_image(path, COLOUR_SIZE)
            except LookalikeError:
                continue
        return None
    return load
