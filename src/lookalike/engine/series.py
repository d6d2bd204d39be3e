"""Series-level search over scan entries (DICOM frames, NIfTI slices).

An entry's series is its DICOM SeriesInstanceUID, or its file when it has none (a NIfTI
volume, a secondary capture without UIDs). Two questions are answered here:

- `search_grouped`: per-image search, then the best entry per series (`--group series`);
- `search_by_series`: a whole series as the query (a folder, a multi-frame file, a volume or
  an indexed series UID): every query slice searches on its own, and each gallery series is
  scored by the mean over query slices of that slice's best similarity to any entry of the
  series (`mean-max`, measured against other aggregates in `lookalike eval brain-slices`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import Conflict, InvalidQuery, LookalikeError, NotFound
from ..imaging import read_file
from ..medical.reader import is_scan, read_scan
from ..medical.window import parse_window
from ..store import ImageRecord, SearchFilter
from .entries import file_of
from .medical_index import PHI_META, WINDOW_META
from .scan import absolute, scan

CANDIDATES_PER_RESULT = 20  # entries fetched per series asked for: a series has many slices
MIN_CANDIDATES = 200
SHOWN_FIELDS = ("modality", "body_part", "series_description", "study_description", "study_uid", "series_uid",
                "slice_position", "frame", "slice")
_UID = re.compile(r"^\d+(\.\d+)+$")


@dataclass
class SeriesHit:
    rank: int
    series: str  # SeriesInstanceUID, or the file of a series without one
    score: float
    best_id: int  # the entry that matched best
    best_path: str
    entries: int  # entries of this series among the candidates that were scored
    fields: dict[str, Any] = field(default_factory=dict)  # of the best entry (SHOWN_FIELDS)

    def to_dict(self) -> dict:
        return {"rank": self.rank, "series": self.series, "score": self.score, "best": {"id": self.best_id, "path": self.best_path},
                "entries": self.entries, "fields": self.fields}


def series_key(rec: ImageRecord) -> str:
    return str(rec.fields.get("series_uid") or file_of(rec.path))


def scan_settings(lib: Any) -> dict[str, Any]:
    meta = lib.store.get_meta()
    return {"window": meta.get(WINDOW_META) or "auto", "keep_phi": meta.get(PHI_META) == "true"}


def configure_scans(lib: Any, window: str | None = None, keep_phi: bool = False) -> None:
    """Set the library's window and PHI policy. Keeping identifiers is an opt-in at creation
    only (an empty library); changing the window of indexed scans would mix two renderings."""
    meta = lib.store.get_meta()
    updates: dict[str, str] = {}
    if keep_phi and meta.get(PHI_META) != "true":
        if lib.store.count() > 0:
            raise Conflict("keeping patient identifiers is chosen when a library is created: use a new, empty library")
        updates[PHI_META] = "true"
    if window is not None:
        spec = parse_window(window).spec
        current = meta.get(WINDOW_META) or "auto"
        if spec != current:
            if any(r.fields.get("format") in ("dicom", "nifti") for r in lib.store.iter_records()):
                raise Conflict(f"this library's scans were indexed with window {current!r}: "
                               f"index them into a new library to use {spec!r} (or pass --window to a search)")
            updates[WINDOW_META] = spec
    if updates:
        lib.store.set_meta(updates)


def search_grouped(lib: Any, query: Any, k: int = 10, *, window: str | None = None,
                   where: SearchFilter | None = None) -> list[SeriesHit]:
    """The k best series for a one-image query, each with its best-matching entry."""
    if window is not None:
        parse_window(window)  # refuse a bad spec before any work
    from .query import resolve

    q = resolve(query, lib.store, lib.extractor.draft_size, window)
    vec = q.vector if q.vector is not None else lib.extractor.embed([q.image])[0]
    n = min(len(lib), max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT))
    scored = lib.store.search(np.asarray(vec, np.float32)[None], n, where, q.exclude)[0]
    records = lib.store.get([i for i, _ in scored])
    best: dict[str, tuple[int, float]] = {}
    counts: dict[str, int] = {}
    for id_, score in scored:
        rec = records.get(id_)
        if rec is None:
            continue
        key = series_key(rec)
        counts[key] = counts.get(key, 0) + 1
        if key not in best:
            best[key] = (id_, score)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][1])[:k]
    return [_hit(rank, key, score, records[id_], counts[key]) for rank, (key, (id_, score)) in enumerate(ranked, start=1)]


def search_by_series(lib: Any, source: str, k: int = 10, *, window: str | None = None,
                     where: SearchFilter | None = None, aggregate: str = "mean-max") -> tuple[int, list[SeriesHit]]:
    """Series that look like the series `source`, best first; returns (query slices, hits)."""
    vectors, exclude_keys = _series_vectors(lib, source, window)
    if len(vectors) == 0:
        raise NotFound(f"{source}: no scan slices to query with")
    n = min(len(lib), max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT))
    results = lib.store.search(np.asarray(vectors, np.float32), n, where, ())
    ids = sorted({i for row in results for i, _ in row})
    records = lib.store.get(ids)
    per_series = aggregate_series(results, {i: series_key(r) for i, r in records.items()}, aggregate, exclude_keys)
    ranked = sorted(per_series.items(), key=lambda kv: -kv[1][0])[:k]
    hits = [_hit(rank, key, score, records[best_id], count)
            for rank, (key, (score, best_id, count)) in enumerate(ranked, start=1)]
    return len(vectors), hits


AGGREGATES = ("mean-max", "vote", "max")


def aggregate_series(results: Sequence[Sequence[tuple[int, float]]], key_of: dict[int, str], aggregate: str = "mean-max",
                     exclude: frozenset[str] | set[str] = frozenset()) -> dict[str, tuple[float, int, int]]:
    """series -> (score, best entry id, entries seen) from per-slice results (best first).

    - mean-max: mean over query slices of the slice's best similarity within the series (a
      slice whose candidates miss the series counts its own worst candidate, a floor);
    - vote: share of query slices whose top hit is in the series;
    - max: the single best similarity (what `search_grouped` does for one image)."""
    if aggregate not in AGGREGATES:
        raise InvalidQuery(f"aggregate {aggregate!r}: use one of {', '.join(AGGREGATES)}")
    best_per_slice: list[dict[str, float]] = []
    floors: list[float] = []
    overall: dict[str, tuple[float, int]] = {}
    seen: dict[str, set[int]] = {}
    votes: dict[str, int] = {}
    for row in results:
        mine: dict[str, float] = {}
        top = None
        for id_, score in row:
            key = key_of.get(id_)
            if key is None or key in exclude:
                continue
            top = top or key
            seen.setdefault(key, set()).add(id_)
            if key not in mine:
                mine[key] = score
            if key not in overall or score > overall[key][0]:
                overall[key] = (score, id_)
        if top is not None:
            votes[top] = votes.get(top, 0) + 1
        best_per_slice.append(mine)
        floors.append(min((s for _, s in row), default=0.0))
    out: dict[str, tuple[float, int, int]] = {}
    n = max(1, len(results))
    for key, (top_score, best_id) in overall.items():
        if aggregate == "max":
            score = top_score
        elif aggregate == "vote":
            score = votes.get(key, 0) / n
        else:
            score = sum(mine.get(key, floor) for mine, floor in zip(best_per_slice, floors)) / n
        out[key] = (round(float(score), 6), best_id, len(seen[key]))
    return out


def _series_vectors(lib: Any, source: str, window: str | None) -> tuple[np.ndarray, set[str]]:
    """Vectors of every slice of the query series, and the series keys to leave out (itself)."""
    if _UID.match(source) and not os.path.exists(source):
        try:  # the UID is digits and dots only: safe inside a quoted filter literal
            recs = list(lib.store.iter_records(where=lib.where(f'series_uid = "{source}"')))
        except InvalidQuery:  # no scan with a series UID was ever indexed here
            recs = []
        if not recs:
            raise NotFound(f"no series {source} in this library")
        if window is None:
            return lib.store.vectors([r.stored_id for r in recs]), {source}
        paths = sorted({file_of(r.path) for r in recs})
    else:
        path = absolute(source)
        entries, failed = scan([path])
        paths = [e.path for e in entries if is_scan(e.path)]
        if not paths:
            reason = failed[0][1] if failed else "no DICOM or NIfTI files there"
            raise NotFound(f"{source}: {reason}")
    spec = parse_window(window if window is not None else scan_settings(lib)["window"])
    images, keys = [], set()
    for p in paths:
        try:
            frames = read_scan(read_file(p), p, spec)
        except LookalikeError:
            continue  # an unreadable file of a query folder: the rest still queries
        images += [f.image for f in frames]
        keys |= {str(f.fields.get("series_uid") or p) for f in frames}
    if not images:
        raise NotFound(f"{source}: none of its scan files could be read")
    return lib.extractor.embed(images), keys


def _hit(rank: int, key: str, score: float, rec: ImageRecord, count: int) -> SeriesHit:
    shown = {f: rec.fields[f] for f in SHOWN_FIELDS if f in rec.fields}
    return SeriesHit(rank, key, round(float(score), 6), rec.stored_id, rec.path, count, shown)
