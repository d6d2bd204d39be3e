"""Finding duplicates in a library, in three tiers:

- exact: byte-identical files (same SHA-256);
- near: the same picture re-encoded, resized, lightly cropped or brightened: CNN cosine
  similarity at least `near_cosine` *and* perceptual hashes (64-bit DCT pHash) at most
  `near_hash_bits` apart. The hash is the second, independent signal: the CNN alone also
  scores two shots of the same scene very high;
- similar: cosine at least `similar_cosine` (other crops, rotations, flips, retakes).

Neighbours come from the store's own `search`, queried in batches with the stored vectors,
so this scales with whatever index the store has (exact in the embedded store, ANN
elsewhere); only the `neighbours` nearest of each image are considered. Perceptual hashes
are computed from the files on demand, only for pairs above the near cosine threshold, so
stores need no extra field and a library indexed before this feature works unchanged.

Groups are connected components of the pairs (single linkage): tier T's groups join every
pair of tier T or stronger; a group is reported at the strongest tier that forms it, and a
weaker tier reports only groups that differ from the stronger tier's. Thresholds were chosen
by measurement (bench/duplicates_thresholds.py, table in the README)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

from ..errors import LookalikeError
from ..imaging import load_image
from ..perceptual_hash import hamming, phash
from ..store import ImageRecord, SearchFilter, VectorStore

TIERS = ("exact", "near", "similar")
_STRENGTH = {t: i for i, t in enumerate(TIERS)}  # lower is stronger

# (phase, done, total) -> None; phases: "comparing", "hashing".
DuplicateProgressFn = Callable[[str, int, int], None]


@dataclass
class DuplicateThresholds:
    near_cosine: float = 0.90
    near_hash_bits: int = 14  # of 64
    similar_cosine: float = 0.80
    neighbours: int = 20  # nearest images examined per image

    def validate(self) -> None:
        if not (-1.0 <= self.similar_cosine <= 1.0 and -1.0 <= self.near_cosine <= 1.0):
            raise LookalikeError("cosine thresholds must be between -1 and 1")
        if not 0 <= self.near_hash_bits <= 64:
            raise LookalikeError("the hash threshold must be between 0 and 64 bits")
        if self.neighbours < 1:
            raise LookalikeError("neighbours must be at least 1")


@dataclass
class DuplicateMember:
    id: int
    path: str
    score: float  # cosine similarity to the group's first member (1.0 for itself)
    width: int
    height: int
    size: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DuplicateGroup:
    group: int  # 1-based, in report order
    tier: str
    members: list[DuplicateMember]  # the one to keep first: most pixels, then largest file

    def to_dict(self) -> dict:
        return {"group": self.group, "tier": self.tier, "members": [m.to_dict() for m in self.members]}


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    thresholds: DuplicateThresholds
    images: int  # images examined
    seconds: float = 0.0
    hashed: int = 0  # images whose perceptual hash was computed
    unreadable: list[str] = field(default_factory=list)  # files gone or unreadable when hashing

    def counts(self) -> dict[str, int]:
        return {t: sum(g.tier == t for g in self.groups) for t in TIERS}

    def to_dict(self) -> dict:
        return {"images": self.images, "thresholds": asdict(self.thresholds), "counts": self.counts(),
                "seconds": round(self.seconds, 3), "groups": [g.to_dict() for g in self.groups]}


def find_duplicates(store: VectorStore, thresholds: DuplicateThresholds | None = None,
                    tiers: Sequence[str] = TIERS, where: SearchFilter | None = None,
                    progress: DuplicateProgressFn | None = None, batch_size: int = 256) -> DuplicateReport:
    t0 = time.perf_counter()
    th = thresholds or DuplicateThresholds()
    th.validate()
    unknown = [t for t in tiers if t not in TIERS]
    if unknown:
        raise LookalikeError(f"unknown tier {unknown[0]!r}: choose from {', '.join(TIERS)}")
    progress = progress or (lambda phase, done, total: None)
    records = {r.id: r for r in store.iter_records(where=where)}
    ids = sorted(records)  # type: ignore[type-var]
    report = DuplicateReport([], th, len(ids))
    # pair (a < b) -> (tier, cosine)
    pairs: dict[tuple[int, int], tuple[str, float]] = {}
    by_sha: dict[str, list[int]] = {}
    for i in ids:
        by_sha.setdefault(records[i].sha256, []).append(i)
    for same in by_sha.values():
        for a in same[1:]:
            pairs[(same[0], a)] = ("exact", 1.0)

    if any(t != "exact" for t in tiers) and len(ids) > 1:
        candidates = _neighbour_pairs(store, ids, th, where, progress, batch_size)
        hashes = _HashCache(records, report)
        near_todo = [(p, s) for p, s in candidates.items() if p not in pairs and s >= th.near_cosine]
        progress("hashing", 0, len(near_todo))
        for n, ((a, b), s) in enumerate(near_todo, start=1):
            ha, hb = hashes.get(a), hashes.get(b)
            if ha is not None and hb is not None and hamming(ha, hb) <= th.near_hash_bits:
                pairs[(a, b)] = ("near", s)
            progress("hashing", n, len(near_todo))
        for p, s in candidates.items():
            if p not in pairs and s >= th.similar_cosine:
                pairs[p] = ("similar", s)
        report.hashed = hashes.computed

    report.groups = _groups(store, records, pairs, tiers)
    report.seconds = time.perf_counter() - t0
    return report


def _neighbour_pairs(store: VectorStore, ids: list[int], th: DuplicateThresholds, where: SearchFilter | None,
                     progress: DuplicateProgressFn, batch_size: int) -> dict[tuple[int, int], float]:
    """(a < b) -> cosine for every image's nearest neighbours above the looser threshold."""
    floor = min(th.similar_cosine, th.near_cosine)
    out: dict[tuple[int, int], float] = {}
    progress("comparing", 0, len(ids))
    for start in range(0, len(ids), batch_size):
        batch = ids[start:start + batch_size]
        results = store.search(store.vectors(batch), th.neighbours + 1, where)
        for a, scored in zip(batch, results):
            for b, s in scored:
                if b != a and s >= floor:
                    key = (a, b) if a < b else (b, a)
                    out[key] = max(out.get(key, -1.0), round(float(s), 6))
        progress("comparing", min(start + batch_size, len(ids)), len(ids))
    return out


class _HashCache:
    def __init__(self, records: dict[int, ImageRecord], report: DuplicateReport) -> None:
        self.records = records
        self.report = report
        self.cache: dict[int, int | None] = {}
        self.computed = 0

    def get(self, id_: int) -> int | None:
        if id_ not in self.cache:
            path = self.records[id_].path
            try:
                self.cache[id_] = phash(load_image(path, draft_size=128))
                self.computed += 1
            except LookalikeError:  # gone or changed since indexing: cannot confirm
                self.cache[id_] = None
                self.report.unreadable.append(path)
        return self.cache[id_]


def _components(ids: list[int], edges: list[tuple[int, int]]) -> list[list[int]]:
    parent = {i: i for i in ids}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    comps: dict[int, list[int]] = {}
    for i in ids:
        comps.setdefault(root(i), []).append(i)
    return [sorted(c) for c in comps.values() if len(c) > 1]


def _groups(store: VectorStore, records: dict[int, ImageRecord], pairs: dict[tuple[int, int], tuple[str, float]],
            tiers: Sequence[str]) -> list[DuplicateGroup]:
    involved = sorted({i for p in pairs for i in p})
    seen: set[frozenset[int]] = set()
    found: list[tuple[str, list[int]]] = []
    for tier in TIERS:
        edges = [p for p, (t, _) in pairs.items() if _STRENGTH[t] <= _STRENGTH[tier]]
        for comp in _components(involved, edges):
            key = frozenset(comp)
            if key in seen:
                continue  # the same group at a stronger tier
            seen.add(key)
            if tier in tiers:
                found.append((tier, comp))
    groups: list[DuplicateGroup] = []
    for tier, comp in sorted(found, key=lambda tc: (_STRENGTH[tc[0]], -len(tc[1]), tc[1][0])):
        recs = sorted((records[i] for i in comp), key=lambda r: (-r.width * r.height, -r.size, r.id))
        vecs = store.vectors([r.id for r in recs])
        scores = vecs @ vecs[0]
        members = [DuplicateMember(r.id, r.path, round(float(min(1.0, s)), 6), r.width, r.height, r.size)  # type: ignore[arg-type]
                   for r, s in zip(recs, scores)]
        groups.append(DuplicateGroup(len(groups) + 1, tier, members))
    return groups


def pair_tiers(report: DuplicateReport) -> dict[tuple[int, int], str]:
    """Every pair of images that share a group, with the group's tier (for evaluation)."""
    out: dict[tuple[int, int], str] = {}
    for g in report.groups:
        ids = sorted(m.id for m in g.members)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                if (a, b) not in out or _STRENGTH[g.tier] < _STRENGTH[out[(a, b)]]:
                    out[(a, b)] = g.tier
    return out


__all__ = ["DuplicateGroup", "DuplicateMember", "DuplicateReport", "DuplicateThresholds", "TIERS",
           "find_duplicates", "pair_tiers"]
