"""Choose the duplicate thresholds by measurement.

Builds a labelled corpus from the bundled real photos: byte copies (exact), near-duplicates
(JPEG re-encodes, resizes, 5-10% crops, slight brightness changes), similar shots (25-40%
crops, rotations, mirror images, strong light changes) and unrelated images (the other photos
and Fashion-MNIST test images: many distinct but alike products, hard negatives). Indexes it
with the real model, then

1. sweeps the near tier (cosine gate x second signal: a 64-bit pHash distance, or keypoint
   verification with a minimum coverage) and the similar tier (cosine) over every pair,
   printing pairwise precision and recall, with and without the Fashion-MNIST negatives;
2. runs `find_duplicates` with the chosen (default or given) thresholds and scores its
   groups: a pair counts as found at a tier when both images share a group of that tier or
   a stronger one, so chaining in the connected components is measured too.

Ground truth per pair: exact = byte-identical; near = both images are the original or a
near-duplicate of the same photo; similar = both derive from the same photo.

    PYTHONPATH=src python bench/duplicates_thresholds.py [--fashion 2000] [--out artifacts/duplicates_thresholds.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from lookalike import Library
from lookalike.demo.samples import sample_photos, save_jpeg
from lookalike.engine.duplicates import DuplicateThresholds, pair_tiers
from lookalike.engine.keypoints import keypoints, match
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from lookalike.imaging import load_image
from perceptual_hash import hamming, phash


@dataclass
class Item:
    path: str
    source: str  # photo name, or "fm<i>" for a Fashion-MNIST image
    kind: str  # original | exact | near | similar | unrelated


def crop(im: Image.Image, fraction: float, rng: np.random.Generator) -> Image.Image:
    """Remove `fraction` of the width and of the height, split randomly between the sides."""
    w, h = im.size
    dx, dy = int(w * fraction), int(h * fraction)
    left, top = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
    return im.crop((left, top, left + w - dx, top + h - dy))


def near_edits(im: Image.Image, rng: np.random.Generator) -> dict[str, tuple[Image.Image, int]]:
    w, h = im.size
    return {
        "q75": (im, 75), "q50": (im, 50), "q30": (im, 30),
        "half": (im.resize((w // 2, h // 2), Image.Resampling.LANCZOS), 90),
        "quarter": (im.resize((max(1, w // 4), max(1, h // 4)), Image.Resampling.LANCZOS), 90),
        "crop5": (crop(im, 0.05, rng), 90), "crop10": (crop(im, 0.10, rng), 90),
        "bright": (ImageEnhance.Brightness(im).enhance(1.1), 90),
        "dark": (ImageEnhance.Brightness(im).enhance(0.9), 90),
        "half-crop5-q60": (crop(im, 0.05, rng).resize((w // 2, h // 2), Image.Resampling.LANCZOS), 60),
    }


def similar_edits(im: Image.Image, rng: np.random.Generator) -> dict[str, tuple[Image.Image, int]]:
    grey = (128, 128, 128)
    return {
        "crop25": (crop(im, 0.25, rng), 90), "crop40": (crop(im, 0.40, rng), 90),
        "rot10": (im.rotate(10, resample=Image.Resampling.BILINEAR, fillcolor=grey), 90),
        "rot-15": (im.rotate(-15, resample=Image.Resampling.BILINEAR, fillcolor=grey), 90),
        "mirror": (ImageOps.mirror(im), 90),
        "light": (ImageEnhance.Brightness(crop(im, 0.15, rng)).enhance(1.5), 90),
    }


def build_corpus(root: Path, n_fashion: int, seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    items: list[Item] = []
    photos = sample_photos()
    for i, (name, photo) in enumerate(photos.items()):
        orig = save_jpeg(photo, root / "photos" / f"{name}.jpg", 95)
        items.append(Item(str(orig), name, "original"))
        if i < 4:  # byte copies elsewhere in the tree
            copy = root / "copies" / f"{name}-copy.jpg"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(orig, copy)
            items.append(Item(str(copy), name, "exact"))
        for kind, edits in (("near", near_edits(photo, rng)), ("similar", similar_edits(photo, rng))):
            for edit, (im, quality) in edits.items():
                p = save_jpeg(im, root / kind / name / f"{name}-{edit}.jpg", quality)
                items.append(Item(str(p), name, kind))
    if n_fashion and fashion_mnist_available():
        fm = load_fashion_mnist("test")
        (root / "fashion").mkdir(parents=True, exist_ok=True)
        for i in range(min(n_fashion, len(fm))):
            p = root / "fashion" / f"fm{i:05d}.png"
            fm.image(i).save(p)
            items.append(Item(str(p), f"fm{i}", "unrelated"))
    return items


def pr(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, int, int]:
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / int(truth.sum()) if truth.sum() else 1.0
    return precision, recall, tp, fp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fashion", type=int, default=2000, help="Fashion-MNIST test images as hard negatives")
    ap.add_argument("--near-cosine", type=float, default=None)
    ap.add_argument("--near-coverage", type=float, default=None)
    ap.add_argument("--similar-cosine", type=float, default=None)
    ap.add_argument("--out", type=Path, default=Path("artifacts/duplicates_thresholds.json"))
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the corpus and library here (re-runs reuse them)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookalike-dups-") as tmp:
        root = args.workdir or Path(tmp)
        t0 = time.perf_counter()
        items = build_corpus(root / "corpus", args.fashion)
        with Library.open(root / "lib") as lib:
            report = lib.add([root / "corpus"], prune=True)
            assert not report.failed, report.failed
            print(f"corpus: {len(items)} images indexed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            by_path = {r.path: r for r in lib.records()}
            ids = [by_path[it.path].id for it in items]
            result = evaluate(lib, items, ids, by_path, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


def evaluate(lib: Library, items: list[Item], ids: list[int], by_path: dict, args: argparse.Namespace) -> dict:
    n = len(items)
    vecs = lib.store.vectors(ids)
    iu = np.triu_indices(n, 1)
    cos = (vecs @ vecs.T)[iu]
    src = np.array([it.source for it in items])
    kind = np.array([it.kind for it in items])
    sha = np.array([by_path[it.path].sha256 for it in items])
    same = (src[:, None] == src[None, :])[iu]
    strict = np.isin(kind, ["original", "exact", "near"])
    fm = kind == "unrelated"
    photos_only = ~(fm[:, None] | fm[None, :])[iu]  # pairs of two photo-derived images
    truth = {"exact": (sha[:, None] == sha[None, :])[iu],
             "near": same & (strict[:, None] & strict[None, :])[iu],
             "similar": same}
    print(f"pairs: {len(cos):,}; exact {int(truth['exact'].sum())}, near-duplicate {int(truth['near'].sum())}, "
          f"same-photo {int(truth['similar'].sum())}", file=sys.stderr)

    # Second signals, only for pairs above the loosest cosine gate swept.
    cand = np.flatnonzero(cos >= 0.70)
    t1 = time.perf_counter()
    need = sorted({int(x) for c in cand for x in (iu[0][c], iu[1][c])})
    images = {i: load_image(items[i].path, draft_size=512) for i in need}
    ph = {i: phash(im) for i, im in images.items()}
    t_hash = (time.perf_counter() - t1) / max(1, len(need))
    t2 = time.perf_counter()
    kp = {i: keypoints(im) for i, im in images.items()}
    t_kp = (time.perf_counter() - t2) / max(1, len(need))
    hd = np.full(len(cos), 64)
    cover = np.zeros(len(cos))
    t3 = time.perf_counter()
    th = DuplicateThresholds()
    for c in cand:
        a, b = int(iu[0][c]), int(iu[1][c])
        hd[c] = hamming(ph[a], ph[b])
        m = match(kp[a], kp[b])
        cover[c] = m.coverage if m.same_picture(th.near_min_inliers, th.near_max_rotation, 0.0) else 0.0
    t_match = (time.perf_counter() - t3) / max(1, len(cand))
    print(f"{len(cand):,} candidate pairs (cosine >= 0.70) over {len(need)} images; pHash {t_hash * 1000:.1f} ms/image "
          f"(+ decode), keypoints {t_kp * 1000:.1f} ms/image, match {t_match * 1000:.2f} ms/pair", file=sys.stderr)

    def row(pred: np.ndarray, tier: str) -> dict:
        p, r, _, fp = pr(pred, truth[tier])
        p2, r2, _, fp2 = pr(pred[photos_only], truth[tier][photos_only])
        return {"precision": p, "recall": r, "fp": fp, "precision_photos": p2, "recall_photos": r2, "fp_photos": fp2}

    signals = {"cosine only": np.ones(len(cos), bool), "pHash <= 10": hd <= 10, "pHash <= 14": hd <= 14,
               "keypoints cov >= 0.60": cover >= 0.60, "keypoints cov >= 0.75": cover >= 0.75,
               "keypoints cov >= 0.85": cover >= 0.85}
    sweep_near = []
    print("\nnear tier, pairwise: cosine >= gate and second signal (all pairs | photos only)")
    print(f"{'signal':>22} {'gate':>5} {'precision':>9} {'recall':>7} {'fp':>6} | {'precision':>9} {'recall':>7} {'fp':>4}")
    for name, ok in signals.items():
        for gate in (0.70, 0.80, 0.85, 0.90, 0.95):
            r = {"signal": name, "cosine": gate, **row((cos >= gate) & ok, "near")}
            sweep_near.append(r)
            print(f"{name:>22} {gate:>5.2f} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['fp']:>6} | "
                  f"{r['precision_photos']:>9.3f} {r['recall_photos']:>7.3f} {r['fp_photos']:>4}")
    sweep_similar = []
    print("\nsimilar tier, pairwise: cosine >= t (all pairs | photos only)")
    print(f"{'cosine':>7} {'precision':>9} {'recall':>7} {'fp':>7} | {'precision':>9} {'recall':>7} {'fp':>4}")
    for t in (0.50, 0.60, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95):
        r = {"cosine": t, **row(cos >= t, "similar")}
        sweep_similar.append(r)
        print(f"{t:>7.2f} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['fp']:>7} | "
              f"{r['precision_photos']:>9.3f} {r['recall_photos']:>7.3f} {r['fp_photos']:>4}")
    worst = float(cos[~same & photos_only].max())
    print(f"\nhighest cosine between different photos: {worst:.3f}; between Fashion-MNIST items: "
          f"{float(cos[~photos_only & ~same].max()):.3f}")

    # -- 2. the engine's groups ------------------------------------------------------------
    th = DuplicateThresholds()
    for field_, value in (("near_cosine", args.near_cosine), ("near_min_coverage", args.near_coverage),
                          ("similar_cosine", args.similar_cosine)):
        if value is not None:
            setattr(th, field_, value)
    t4 = time.perf_counter()
    dup = lib.duplicates(th)
    dup_s = time.perf_counter() - t4
    found = pair_tiers(dup)
    index = {id_: i for i, id_ in enumerate(ids)}
    strength = {"exact": 0, "near": 1, "similar": 2}
    sizes = sorted((len(g.members) for g in dup.groups), reverse=True)
    print(f"\nfind_duplicates with {asdict(th)}:\n  {dup.counts()} groups (largest {sizes[:3]}) in {dup_s:.1f} s, "
          f"{dup.verified} pairs verified")
    print(f"{'tier':>8} {'precision':>9} {'recall':>7} {'pairs':>6} {'fp':>5} | {'precision':>9} {'recall':>7} {'fp':>4}  (photos only)")
    tiers: dict = {}
    for tier in ("exact", "near", "similar"):
        pred = np.zeros(len(cos), dtype=bool)
        for (a, b), t in found.items():
            if strength[t] <= strength[tier]:
                i, j = sorted((index[a], index[b]))
                pred[i * n - i * (i + 1) // 2 + (j - i - 1)] = True  # position in triu order
        r = row(pred, tier)
        tiers[tier] = {**r, "true_pairs": int(truth[tier].sum())}
        print(f"{tier:>8} {r['precision']:>9.3f} {r['recall']:>7.3f} {int(truth[tier].sum()):>6} {r['fp']:>5} | "
              f"{r['precision_photos']:>9.3f} {r['recall_photos']:>7.3f} {r['fp_photos']:>4}")
    # Which edits are not grouped with their original at their tier.
    orig_id = {it.source: ids[i] for i, it in enumerate(items) if it.kind == "original"}
    missed: dict[str, int] = {}
    for i, it in enumerate(items):
        if it.kind in ("near", "similar"):
            key = tuple(sorted((orig_id[it.source], ids[i])))
            tier = found.get(key)  # type: ignore[arg-type]
            if tier is None or strength[tier] > strength[it.kind]:
                edit = f"{it.kind}:" + Path(it.path).stem.removeprefix(it.source + "-")
                missed[edit] = missed.get(edit, 0) + 1
    print("edits not grouped with their original at their tier (number of photos):", missed or "none")
    return {"images": n, "photos": int((~fm).sum()), "fashion_mnist": int(fm.sum()), "pairs": int(len(cos)),
            "thresholds": asdict(th), "groups": dup.counts(), "largest_groups": sizes[:5], "tiers": tiers,
            "missed_edits": missed, "seconds_find_duplicates": dup_s, "keypoints_ms_per_image": t_kp * 1000,
            "match_ms_per_pair": t_match * 1000, "sweep_near": sweep_near, "sweep_similar": sweep_similar,
            "highest_cosine_different_photos": worst}


if __name__ == "__main__":
    raise SystemExit(main())
