"""Finding duplicates in a library, in three tiers:

- exact: byte-identical files (same SHA-256);
- near: the same picture re-encoded, resized, lightly cropped or brightened: CNN cosine
  similarity at least `near_cosine` *and* confirmed geometrically (keypoints.py: ORB
  keypoints agree on one transform that rotates at most `near_max_rotation` degrees and
  maps each image onto at least `near_min_coverage` of the other). The CNN alone also scores
  mirror images, rotations and different shots of one scene very high; a perceptual hash,
  the other candidate, breaks on 5-10% crops (measured: bench/duplicates_thresholds.py);
- similar: cosine at least `similar_cosine` (other crops, rotations, mirror images, retakes).

Neighbours come from the store's own `search`, queried in batches with the stored vectors,
so this scales with whatever index the store has (exact in the embedded store, ANN
elsewhere); only the `neighbours` nearest of each image are considered. Keypoints are
computed from the files on demand, only for images in pairs above the near cosine gate, so
stores need no extra field and a library indexed before this feature works unchanged.

Groups: exact and near groups are connected components (both relations are close to
transitive: a copy of a copy is a copy). Similar groups start from those and merge along
similar pairs, best first, only while the average cosine between the two groups stays at
least `similar_cosine` (greedy average linkage), so chains of merely alike images (a
catalogue of plain T-shirts) do not collapse into one huge group.

The three levels nest (an exact group lies inside one near group, which lies inside one
similar group), and the report is the partition at the weakest tier asked for, so groups
are disjoint: every image is in one group and acting on a report never touches an image
twice. Each group keeps one image, chosen by a stated policy (keep_policy.py), and every
other member says how it matches that keeper (`match`): `exact` (same bytes), `near` (in
the keeper's near group) or `similar`. Members whose match is not a tier asked for are left
out (`--tier similar` lists each keeper with its similar shots only). A group's `tier` is
the strongest match in it; groups left with the keeper alone are dropped."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import LookalikeError
from ..models import l2_normalize
from ..store import ImageRecord, SearchFilter, VectorStore
from .entries import load_entry, split_entry
from .keep_policy import KeepPolicy
from .keypoints import Keypoints, keypoints, load_cv2, match
from .params import TIERS, DuplicateThresholds, check_tiers
from .scan import record_file_exists

_STRENGTH = {t: i for i, t in enumerate(TIERS)}  # lower is stronger

# (phase, done, total) -> None; phases: "comparing", "keypoints", "verifying".
DuplicateProgressFn = Callable[[str, int, int], None]


@dataclass
class DuplicateMember:
    id: int
    path: str
    score: float  # cosine similarity to the group's keeper, its first member (1.0 for itself)
    width: int
    height: int
    size: int
    keep: bool = False  # the one image of the group the keep policy keeps
    match: str | None = None  # how it matches the keeper: exact, near or similar; None for the keeper

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DuplicateGroup:
    group: int  # 1-based, in report order
    tier: str
    members: list[DuplicateMember]  # the keeper first, then the others in keep-policy order

    @property
    def keeper(self) -> DuplicateMember:
        return self.members[0]

    def to_dict(self) -> dict:
        return {"group": self.group, "tier": self.tier, "members": [m.to_dict() for m in self.members]}


@dataclass
class DuplicateReport:
    groups: list[DuplicateGroup]
    thresholds: DuplicateThresholds
    images: int  # images examined
    keep: KeepPolicy = field(default_factory=KeepPolicy)
    seconds: float = 0.0
    verified: int = 0  # candidate pairs checked geometrically
    unreadable: list[str] = field(default_factory=list)  # files gone or unreadable when verifying

    def counts(self) -> dict[str, int]:
        return {t: sum(g.tier == t for g in self.groups) for t in TIERS}

    def to_dict(self) -> dict:
        return {"images": self.images, "thresholds": asdict(self.thresholds), "keep_policy": str(self.keep),
                "counts": self.counts(), "seconds": round(self.seconds, 3), "groups": [g.to_dict() for g in self.groups]}


def find_duplicates(store: VectorStore, thresholds: DuplicateThresholds | None = None,
                    tiers: Sequence[str] = TIERS, where: SearchFilter | None = None,
                    progress: DuplicateProgressFn | None = None, batch_size: int = 256,
                    keep: KeepPolicy | None = None, head_dim: int | None = None) -> DuplicateReport:
    """`head_dim`: compare images by their vectors' first `head_dim` dimensions (the model's
    own pooled features, ModelInfo.head_dim), renormalised; None: the whole vector."""
    t0 = time.perf_counter()
    keep = keep or KeepPolicy()
    th = thresholds or DuplicateThresholds()
    th.validate()
    tiers = check_tiers(tiers)
    view = head_view(head_dim)

    def vectors(ids: Sequence[int]) -> np.ndarray:
        return view(store.vectors(list(ids)))
    if any(t != "exact" for t in tiers):
        load_cv2()  # before any work: without OpenCV only the exact tier can be found
    progress = progress or (lambda phase, done, total: None)
    records = {r.stored_id: r for r in store.iter_records(where=where)}
    ids = sorted(records)
    report = DuplicateReport([], th, len(ids), keep)
    # pair (a < b) -> (tier, cosine)
    pairs: dict[tuple[int, int], tuple[str, float]] = {}
    by_sha: dict[str, list[int]] = {}
    for i in ids:
        by_sha.setdefault(records[i].sha256, []).append(i)
    for same in by_sha.values():
        for a in same[1:]:
            pairs[(same[0], a)] = ("exact", 1.0)

    if any(t != "exact" for t in tiers) and len(ids) > 1:
        candidates = _neighbour_pairs(store, view if head_dim is not None else None, ids, th, where, progress, batch_size)
        # Frames of one video look alike by nature: they are not duplicates of each other.
        candidates = {p: s for p, s in candidates.items() if not _same_file(records[p[0]].path, records[p[1]].path)}
        features = _KeypointCache(records, report)
        near_todo = [(p, s) for p, s in candidates.items() if p not in pairs and s >= th.near_cosine]
        features.prepare(sorted({i for p, _ in near_todo for i in p}), progress)
        progress("verifying", 0, len(near_todo))
        with ThreadPoolExecutor(max_workers=_workers()) as pool:  # OpenCV releases the GIL
            verdicts = pool.map(lambda ps: features.same_picture(ps[0][0], ps[0][1], th), near_todo)
            for n, ((p, s), ok) in enumerate(zip(near_todo, verdicts), start=1):
                if ok:
                    pairs[p] = ("near", s)
                progress("verifying", n, len(near_todo))
        report.verified = len(near_todo)
        _confirm_near_groups(vectors, records, pairs, features, th)
        for p, s in candidates.items():
            if p not in pairs and s >= th.similar_cosine:
                pairs[p] = ("similar", s)

    report.groups = _groups(vectors, records, pairs, tiers, th.similar_cosine, keep)
    report.seconds = time.perf_counter() - t0
    return report


VectorReader = Callable[[Sequence[int]], np.ndarray]  # ids -> the vectors duplicates compare
VectorView = Callable[[np.ndarray], np.ndarray]


def head_view(head_dim: int | None) -> VectorView:
    """Stored vectors -> the ones duplicates (and the catalogue's `distinct`) compare: as
    stored, or their first `head_dim` dimensions renormalised."""
    if head_dim is None:
        return lambda v: v
    return lambda v: l2_normalize(v[:, :head_dim])


def _neighbour_pairs(store: VectorStore, rescore: VectorView | None, ids: list[int], th: DuplicateThresholds,
                     where: SearchFilter | None, progress: DuplicateProgressFn, batch_size: int
                     ) -> dict[tuple[int, int], float]:
    """(a < b) -> cosine for every image's nearest neighbours above the looser threshold
    (neighbours found with the stored vectors, scored with `rescore` when given)."""
    floor = min(th.similar_cosine, th.near_cosine)
    out: dict[tuple[int, int], float] = {}
    progress("comparing", 0, len(ids))
    for start in range(0, len(ids), batch_size):
        batch = ids[start:start + batch_size]
        stored = store.vectors(batch)
        results = store.search(stored, th.neighbours + 1, where)
        found = sorted({b for scored in results for b, _ in scored})
        if rescore is not None and found:
            compared = rescore(store.vectors(found))
            row = {b: n for n, b in enumerate(found)}
            mine = rescore(stored)
            results = [[(b, float(compared[row[b]] @ mine[n])) for b, _ in scored] for n, scored in enumerate(results)]
        for a, scored in zip(batch, results):
            for b, s in scored:
                if b != a and s >= floor:
                    key = (a, b) if a < b else (b, a)
                    out[key] = max(out.get(key, -1.0), round(float(s), 6))
        progress("comparing", min(start + batch_size, len(ids)), len(ids))
    return out


class _KeypointCache:
    def __init__(self, records: dict[int, ImageRecord], report: DuplicateReport) -> None:
        self.records = records
        self.report = report
        self.cache: dict[int, Keypoints | None] = {}

    def _compute(self, id_: int) -> Keypoints | None:
        try:
            return keypoints(load_entry(self.records[id_].path, draft_size=512))
        except LookalikeError:  # gone or unreadable since indexing: cannot confirm
            self.report.unreadable.append(self.records[id_].path)
            return None

    def prepare(self, ids: list[int], progress: DuplicateProgressFn) -> None:
        """Decode and find keypoints in parallel (Pillow and OpenCV release the GIL)."""
        progress("keypoints", 0, len(ids))
        with ThreadPoolExecutor(max_workers=_workers()) as pool:
            for n, (id_, kp) in enumerate(zip(ids, pool.map(self._compute, ids)), start=1):
                self.cache[id_] = kp
                progress("keypoints", n, len(ids))

    def same_picture(self, a: int, b: int, th: DuplicateThresholds) -> bool:
        for i in (a, b):
            if i not in self.cache:
                self.cache[i] = self._compute(i)
        ka, kb = self.cache[a], self.cache[b]
        return ka is not None and kb is not None and \
            match(ka, kb).same_picture(th.near_min_inliers, th.near_max_rotation, th.near_min_coverage)


def _workers() -> int:
    return max(2, os.cpu_count() or 2)


def _anchor_order(r: ImageRecord) -> tuple:
    """The image near-duplicates are verified against: most pixels, then largest file, then
    oldest id (geometry is best checked against the fullest version; independent of which
    image the keep policy keeps)."""
    return (-r.width * r.height, -r.size, r.id)


def _same_file(a: str, b: str) -> bool:
    """Two entries of one multi-entry file (a video's frames)."""
    file_a, fragment_a = split_entry(a)
    return fragment_a is not None and file_a == split_entry(b)[0]


def _confirm_near_groups(vectors: VectorReader, records: dict[int, ImageRecord], pairs: dict[tuple[int, int], tuple[str, float]],
                         features: _KeypointCache, th: DuplicateThresholds) -> None:
    """Near-duplicate links chain (a 15% crop matches a 10% crop, which matches the original),
    so every member of a near group must itself be the same picture as the group's first
    image (its anchor, the fullest version); the others drop to the similar tier. Rewrites `pairs` in place."""
    involved = sorted({i for p, (t, _) in pairs.items() if t in ("exact", "near") for i in p})
    groups = _components(involved, [p for p, (t, _) in pairs.items() if t in ("exact", "near")])
    member_of: dict[int, int] = {}
    for g, comp in enumerate(groups):
        keeper = min((records[i] for i in comp), key=_anchor_order).stored_id
        vecs = dict(zip(comp, vectors(comp)))
        for i in comp:
            if i == keeper or records[i].sha256 == records[keeper].sha256 or features.same_picture(keeper, i, th):
                member_of[i] = g
                if i != keeper:
                    key = (min(i, keeper), max(i, keeper))
                    if pairs.get(key, ("", 0.0))[0] != "exact":
                        pairs[key] = ("near", round(float(vecs[i] @ vecs[keeper]), 6))
    for (a, b), (t, s) in list(pairs.items()):
        if t == "near" and (member_of.get(a, -1) != member_of.get(b, -2)):
            if s >= th.similar_cosine:
                pairs[(a, b)] = ("similar", s)
            else:
                del pairs[(a, b)]


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


def _groups(vectors: VectorReader, records: dict[int, ImageRecord], pairs: dict[tuple[int, int], tuple[str, float]],
            tiers: Sequence[str], similar_cosine: float, keep: KeepPolicy) -> list[DuplicateGroup]:
    """The disjoint groups at the weakest tier asked for, each listing its keeper and the
    members whose match to the keeper is a tier asked for."""
    involved = sorted({i for p in pairs for i in p})
    exact = _components(involved, [p for p, (t, _) in pairs.items() if t == "exact"])
    near = _components(involved, [p for p, (t, _) in pairs.items() if t in ("exact", "near")])
    weakest = max(tiers, key=_STRENGTH.__getitem__)
    partition = exact if weakest == "exact" else near if weakest == "near" else \
        _average_linkage(vectors, involved, near, pairs, similar_cosine)
    near_of = {i: frozenset(c) for c in near for i in c}
    found: list[tuple[str, list[ImageRecord], list[str]]] = []
    for comp in partition:
        # A file deleted since indexing is neither kept nor offered for removal (a stat per
        # grouped image only; `index --prune` forgets it).
        recs = sorted((records[i] for i in comp if record_file_exists(records[i].path)), key=keep.order)
        if len(recs) < 2:
            continue
        keeper = recs[0]
        kept, matches = [keeper], []
        for r in recs[1:]:
            match = "exact" if r.sha256 == keeper.sha256 else "near" if r.stored_id in near_of.get(keeper.stored_id, ()) else "similar"
            if match in tiers:
                kept.append(r)
                matches.append(match)
        if matches:
            found.append((min(matches, key=_STRENGTH.__getitem__), kept, matches))
    groups: list[DuplicateGroup] = []
    for tier, recs, matches in sorted(found, key=lambda f: (_STRENGTH[f[0]], -len(f[1]), f[1][0].stored_id)):
        vecs = vectors([r.stored_id for r in recs])
        scores = vecs @ vecs[0]
        members = [DuplicateMember(r.stored_id, r.path, round(float(min(1.0, s)), 6), r.width, r.height, r.size,
                                   keep=n == 0, match=None if n == 0 else matches[n - 1])
                   for n, (r, s) in enumerate(zip(recs, scores))]
        groups.append(DuplicateGroup(len(groups) + 1, tier, members))
    return groups


def _average_linkage(vectors: VectorReader, involved: list[int], seeds: list[list[int]],
                     pairs: dict[tuple[int, int], tuple[str, float]], threshold: float) -> list[list[int]]:
    """Merge `seeds` (and singletons) along pairs, best first, while the mean cosine between
    the two groups is at least `threshold`."""
    if not involved:
        return []
    row = {id_: n for n, id_ in enumerate(involved)}
    vecs = vectors(involved)
    members: dict[int, list[int]] = {i: [i] for i in involved}  # group label -> ids
    sums: dict[int, np.ndarray] = {i: vecs[row[i]] for i in involved}  # mean cross cosine = sum_a . sum_b / (na nb)
    label = {i: i for i in involved}
    for comp in seeds:
        for i in comp:
            label[i] = comp[0]
        for i in comp[1:]:
            del members[i], sums[i]
        members[comp[0]] = list(comp)
        sums[comp[0]] = vecs[[row[i] for i in comp]].sum(axis=0)
    for (a, b), (_, s) in sorted(pairs.items(), key=lambda ps: (-ps[1][1], ps[0])):
        la, lb = label[a], label[b]
        if la == lb or s < threshold:
            continue
        mean = float(sums[la] @ sums[lb]) / (len(members[la]) * len(members[lb]))
        if mean >= threshold:
            keep, gone = (la, lb) if la < lb else (lb, la)
            for i in members[gone]:
                label[i] = keep
            members[keep] = sorted(members[keep] + members.pop(gone))
            sums[keep] = sums[keep] + sums.pop(gone)
    return [g for g in members.values() if len(g) > 1]


def pair_tiers(report: DuplicateReport) -> dict[tuple[int, int], str]:
    """Every pair of images that share a group, with the tier that relates them (for
    evaluation): a member's match to the keeper; between two other members, the weaker
    of their matches."""
    out: dict[tuple[int, int], str] = {}
    for g in report.groups:
        tier_of = {m.id: m.match or "exact" for m in g.members}  # the keeper matches itself exactly
        ids = sorted(tier_of)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                keeper_pair = g.keeper.id in (a, b)
                tier = tier_of[b if a == g.keeper.id else a] if keeper_pair else \
                    max(tier_of[a], tier_of[b], key=_STRENGTH.__getitem__)
                out[(a, b)] = tier
    return out


__all__ = ["DuplicateGroup", "DuplicateMember", "DuplicateReport", "DuplicateThresholds", "KeepPolicy", "TIERS",
           "find_duplicates", "pair_tiers"]
