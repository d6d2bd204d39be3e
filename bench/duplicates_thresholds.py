"""Choose the duplicate thresholds by measurement.

Builds a labelled corpus from the bundled real photos: byte copies (exact), near-duplicates
(JPEG re-encodes, resizes, 5-10% crops, slight brightness changes), similar shots (25-40%
crops, rotations, mirror images, strong light changes) and unrelated images (the other photos
and Fashion-MNIST test images: many distinct but alike products, hard negatives). Indexes it
with the real model, then

1. sweeps the near tier (cosine x pHash distance) and the similar tier (cosine) over every
   pair, printing pairwise precision and recall;
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
from lookalike.engine.duplicates import DuplicateThresholds, pair_tiers
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from lookalike.imaging import load_image
from lookalike.perceptual_hash import dhash, hamming, phash
from lookalike.samples import sample_photos, save_jpeg


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
        "contrast": (ImageEnhance.Contrast(im).enhance(0.5), 90),
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
    ap.add_argument("--near-hash-bits", type=int, default=None)
    ap.add_argument("--similar-cosine", type=float, default=None)
    ap.add_argument("--out", type=Path, default=Path("artifacts/duplicates_thresholds.json"))
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the corpus and library here (re-runs reuse them)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookalike-dups-") as tmp:
        root = args.workdir or Path(tmp)
        t0 = time.perf_counter()
        items = build_corpus(root / "corpus", args.fashion)
        with Library.open(root / "lib") as lib:
            report = lib.add([root / "corpus"])
            assert not report.failed, report.failed
            print(f"corpus: {len(items)} images indexed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            by_path = {r.path: r for r in lib.records()}
            ids = [by_path[it.path].id for it in items]
            vecs = lib.store.vectors(ids)

            # -- 1. pairwise sweep -------------------------------------------------------
            n = len(items)
            iu = np.triu_indices(n, 1)
            cos = (vecs @ vecs.T)[iu]
            t1 = time.perf_counter()
            images = [load_image(it.path, draft_size=128) for it in items]
            ph = [phash(im) for im in images]
            dh = [dhash(im) for im in images]
            hash_s = (time.perf_counter() - t1) / n
            src = np.array([it.source for it in items])
            kind = np.array([it.kind for it in items])
            sha = np.array([by_path[it.path].sha256 for it in items])
            same = (src[:, None] == src[None, :])[iu]
            strict = np.isin(kind, ["original", "exact", "near"])
            truth = {"exact": (sha[:, None] == sha[None, :])[iu],
                     "near": same & (strict[:, None] & strict[None, :])[iu],
                     "similar": same}
            # Hamming distances only where they matter (cosine above the loosest value swept).
            cand = np.flatnonzero(cos >= 0.70)
            pd = np.full(len(cos), 64)
            dd = np.full(len(cos), 64)
            for c in cand:
                a, b = iu[0][c], iu[1][c]
                pd[c], dd[c] = hamming(ph[a], ph[b]), hamming(dh[a], dh[b])
            print(f"pairs: {len(cos):,}; near-duplicate pairs {int(truth['near'].sum())}, "
                  f"same-photo pairs {int(truth['similar'].sum())}; pHash {hash_s * 1000:.1f} ms/image",
                  file=sys.stderr)
            sweep_near = []
            for t in (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96):
                for hname, dist in (("phash", pd), ("dhash", dd)):
                    for h in (6, 10, 14, 18, 22, 64):
                        p, r, tp, fp = pr((cos >= t) & (dist <= h), truth["near"])
                        sweep_near.append({"cosine": t, "hash": hname, "bits": h, "precision": p, "recall": r, "fp": fp})
            sweep_similar = []
            for t in (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85):
                p, r, tp, fp = pr(cos >= t, truth["similar"])
                sweep_similar.append({"cosine": t, "precision": p, "recall": r, "fp": fp})
            worst_neg = float(cos[~truth["similar"]].max())
            fm_pairs = np.isin(kind, ["unrelated"])
            fm_pair = (fm_pairs[:, None] & fm_pairs[None, :])[iu]

            print("\nnear tier, pairwise (cosine >= t and hash distance <= bits):")
            print(f"{'cosine':>7} {'hash':>6} {'bits':>5} {'precision':>9} {'recall':>7} {'fp':>6}")
            for row in sweep_near:
                if row["hash"] == "phash" or row["bits"] in (10, 14):
                    print(f"{row['cosine']:>7.2f} {row['hash']:>6} {row['bits']:>5} {row['precision']:>9.3f} "
                          f"{row['recall']:>7.3f} {row['fp']:>6}")
            print("\nsimilar tier, pairwise (cosine >= t):")
            print(f"{'cosine':>7} {'precision':>9} {'recall':>7} {'fp':>6}")
            for row in sweep_similar:
                print(f"{row['cosine']:>7.2f} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['fp']:>6}")
            print(f"\nhighest cosine between images of different sources: {worst_neg:.3f} "
                  f"(Fashion-MNIST pairs: {float(cos[fm_pair].max()) if fm_pair.any() else float('nan'):.3f})")

            # -- 2. the engine's groups ------------------------------------------------------
            defaults = DuplicateThresholds()
            th = DuplicateThresholds(
                near_cosine=args.near_cosine if args.near_cosine is not None else defaults.near_cosine,
                near_hash_bits=args.near_hash_bits if args.near_hash_bits is not None else defaults.near_hash_bits,
                similar_cosine=args.similar_cosine if args.similar_cosine is not None else defaults.similar_cosine)
            t2 = time.perf_counter()
            dup = lib.duplicates(th)
            dup_s = time.perf_counter() - t2
            found = pair_tiers(dup)
            index = {id_: i for i, id_ in enumerate(ids)}
            strength = {"exact": 0, "near": 1, "similar": 2}
            tiers = {}
            print(f"\nfind_duplicates with {asdict(th)}: {dup.counts()} groups in {dup_s:.1f} s "
                  f"({dup.hashed} images hashed)")
            print(f"{'tier':>8} {'precision':>9} {'recall':>7} {'true pairs':>10} {'false pairs':>11}")
            for tier in ("exact", "near", "similar"):
                pred = np.zeros(len(cos), dtype=bool)
                for (a, b), t in found.items():
                    if strength[t] <= strength[tier]:
                        i, j = sorted((index[a], index[b]))
                        pred[i * n - i * (i + 1) // 2 + (j - i - 1)] = True  # position in triu order
                p, r, tp, fp = pr(pred, truth[tier])
                tiers[tier] = {"precision": p, "recall": r, "true_pairs": int(truth[tier].sum()), "tp": tp, "fp": fp}
                print(f"{tier:>8} {p:>9.3f} {r:>7.3f} {int(truth[tier].sum()):>10} {fp:>11}")
            # Which edits the near tier misses (edit vs its original not in one near group).
            orig_id = {it.source: ids[i] for i, it in enumerate(items) if it.kind == "original"}
            missed: dict[str, int] = {}
            for i, it in enumerate(items):
                if it.kind in ("near", "similar"):
                    key = tuple(sorted((orig_id[it.source], ids[i])))
                    tier = found.get(key)  # type: ignore[arg-type]
                    wanted = "near" if it.kind == "near" else "similar"
                    if tier is None or strength[tier] > strength[wanted]:
                        edit = Path(it.path).stem.removeprefix(it.source + "-")
                        missed[f"{it.kind}:{edit}"] = missed.get(f"{it.kind}:{edit}", 0) + 1
            print("edits not grouped with their original at their tier (count of photos):", missed or "none")
            tiers["missed_edits"] = missed
            result = {"images": n, "pairs": int(len(cos)), "fashion_mnist": args.fashion,
                      "thresholds": asdict(th), "groups": dup.counts(), "tiers": tiers,
                      "seconds_find_duplicates": dup_s, "phash_ms_per_image": hash_s * 1000,
                      "sweep_near": sweep_near, "sweep_similar": sweep_similar,
                      "highest_unrelated_cosine": worst_neg}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
