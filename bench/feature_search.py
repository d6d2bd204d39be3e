"""Which features from the Lite0 weights rank best on the suite: pooling, layers, scales, resize.

    python bench/feature_search.py                  # every candidate, one table
    python bench/feature_search.py --cache /tmp/features-cache

One forward pass per (input size, resize mode) and domain writes the feature maps the
candidates need (the last 1280-channel map and the outputs of stages 5-7) to the cache as
float16; every candidate is then pooled from the cached maps in NumPy, so a candidate costs
no extra network time. Each is scored like `lookalike eval suite` (mAP@10 per domain, same
seeded domains) against the current default, GeM p=3 of a squashed 224 px image, measured in
the same run; CPU ms per query = one-image forward passes of the graphs it needs (median of
LATENCY_RUNS, time.process_time) + its pooling. Candidates chosen here are implemented as
suite options (eval/suite.py), whose numbers confirm these."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from lookalike.engine.rerank import expand_queries
from lookalike.eval.domains import Domain, load_domains
from lookalike.eval.metrics import evaluate_rankings, rank_gallery
from lookalike.eval.suite import PAIR_DEPTH
from lookalike.models import l2_normalize as l2
from lookalike.models.effnet import EFFNET_SPECS, weights_path
from lookalike.models.feature_options import taps_session
from lookalike.models.pooling import avg_pool, gem_pool, rmac_pool
from lookalike.models.preprocess import aspect_resize

ROOT = Path(__file__).resolve().parent.parent
STAGES = (3, 4, 5, 6, 7)
LATENCY_RUNS = 15
QE_K, QE_ALPHA = 3, 3.0  # "+ alpha-QE" rows: is a feature's gain still there after query expansion?
Maps = dict[str, np.ndarray]  # "fmap", "stage5", ... -> [n, c, h, w] float16


def graph(size: int):
    """Lite0 at a `size` px input, outputting its last feature map and STAGES' outputs."""
    return taps_session(EFFNET_SPECS["effnet-lite0"], size, STAGES)


def domain_images(d: Domain) -> list[Image.Image]:
    """Gallery, then the outside queries."""
    return list(d.gallery) + [d.query_images[i] for i in np.flatnonzero(d.query_index < 0)]  # type: ignore[misc]


def maps_for(d: Domain, size: int, mode: str, cache: Path) -> Maps:
    path = cache / f"{d.name}-{size}-{mode}.npz"
    if path.exists():
        with np.load(path) as z:
            if all(f"stage{k}" in z for k in STAGES):
                return dict(z)
    sess = graph(size)
    names = ["feature_map"] + [f"stage{k}" for k in STAGES]
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    images = domain_images(d)
    t0 = time.process_time()
    for s in range(0, len(images), 32):
        batch = np.stack([aspect_resize(im, size, mode) for im in images[s:s + 32]])
        for n, out in zip(names, sess.run(names, {"images": batch})):
            parts[n].append(out.astype(np.float16))
    print(f"  {d.name} {size} {mode}: {len(images)} images, {1000 * (time.process_time() - t0) / len(images):.1f} "
          f"CPU ms each", flush=True)
    maps = {("fmap" if n == "feature_map" else n): np.concatenate(v) for n, v in parts.items()}
    np.savez(path, **maps)
    return maps


def alpha_qe(queries: np.ndarray, gallery: np.ndarray, exclude: np.ndarray, k: int = QE_K, alpha: float = QE_ALPHA
             ) -> np.ndarray:
    """Alpha query expansion (Radenovic et al.): the query plus its top k neighbours weighted by
    similarity^alpha, to see whether a feature's gain survives the re-ranking it will meet."""
    top = rank_gallery(queries, gallery, k, exclude)
    return expand_queries(queries, gallery[top], np.take_along_axis(queries @ gallery.T, top, axis=1), alpha)


def score(d: Domain, vecs: np.ndarray, qe: bool = False) -> float:
    n_gallery = len(d.gallery)
    gallery = vecs[:n_gallery]
    queries = np.empty((len(d.query_labels), vecs.shape[1]), np.float32)
    inside = d.query_index >= 0
    queries[inside] = gallery[d.query_index[inside]]
    queries[~inside] = vecs[n_gallery:]
    if qe:
        queries = alpha_qe(queries, gallery, d.query_index)
    ranked = rank_gallery(queries, gallery, PAIR_DEPTH, d.query_index)
    m = evaluate_rankings(ranked, d.query_labels, d.gallery_labels, (1,), (PAIR_DEPTH,), d.query_index)
    return m.map_at[PAIR_DEPTH]


# A candidate: the (size, resize mode) passes it needs and a function of their maps -> vectors.
Candidate = tuple[list[tuple[int, str]], Callable[[list[Maps]], np.ndarray]]


def f32(m: np.ndarray) -> np.ndarray:
    return m.astype(np.float32)


def candidates() -> dict[str, Candidate]:
    gem, avg, rmac = gem_pool, avg_pool, rmac_pool
    sq = [(224, "squash")]
    c: dict[str, Candidate] = {"default: gem3 224 squash": (sq, lambda m: l2(gem(f32(m[0]["fmap"]), 3.0)))}
    c["avg 224"] = (sq, lambda m: l2(avg(f32(m[0]["fmap"]))))
    for p in (2.0, 4.0, 6.0):
        c[f"gem{p:g} 224"] = (sq, lambda m, p=p: l2(gem(f32(m[0]["fmap"]), p)))
    for k in STAGES:
        for w in (0.5, 0.7, 1.0):
            c[f"multi-layer stage{k} avg w{w:g}"] = (sq, lambda m, k=k, w=w: l2(np.hstack([
                l2(gem(f32(m[0]["fmap"]), 3.0)), w * l2(avg(f32(m[0][f"stage{k}"])))])))
        c[f"multi-layer stage{k} gem3(relu) w0.7"] = (sq, lambda m, k=k: l2(np.hstack([
            l2(gem(f32(m[0]["fmap"]), 3.0)), 0.7 * l2(gem(np.maximum(f32(m[0][f"stage{k}"]), 0), 3.0))])))
        c[f"multi-layer stage{k} avg, no per-part L2"] = (sq, lambda m, k=k: l2(np.hstack([
            gem(f32(m[0]["fmap"]), 3.0), avg(f32(m[0][f"stage{k}"]))])))
    for sizes in ((288,), (320,), (224, 288), (224, 320), (224, 288, 320)):
        c["scales " + "+".join(map(str, sizes))] = ([(s, "squash") for s in sizes], lambda ms: l2(sum(
            l2(gem(f32(m["fmap"]), 3.0)) for m in ms)))
    for k in (3, 4, 5, 6):
        for w in (1.5, 2.0, 3.0):
            c[f"multi-layer stage{k} avg w{w:g}"] = (sq, lambda m, k=k, w=w: l2(np.hstack([
                l2(gem(f32(m[0]["fmap"]), 3.0)), w * l2(avg(f32(m[0][f"stage{k}"])))])))
    for k in (3, 4):
        c[f"multi-layer stage{k} avg w1"] = (sq, lambda m, k=k: l2(np.hstack([
            l2(gem(f32(m[0]["fmap"]), 3.0)), l2(avg(f32(m[0][f"stage{k}"])))])))
    for ks in ((5, 6), (4, 5), (4, 5, 6)):
        c["multi-layer stages" + "+".join(map(str, ks)) + " avg w1"] = (sq, lambda m, ks=ks: l2(np.hstack(
            [l2(gem(f32(m[0]["fmap"]), 3.0))] + [l2(avg(f32(m[0][f"stage{k}"]))) for k in ks])))
    for sizes in ((192,), (160,), (192, 224), (160, 224), (192, 224, 288)):
        c["scales " + "+".join(map(str, sizes))] = ([(s, "squash") for s in sizes], lambda ms: l2(sum(
            l2(gem(f32(m["fmap"]), 3.0)) for m in ms)))
    for ks, w in (((5, 6), 1.5), ((5, 6), 2.0), ((4, 5, 6), 1.5), ((4, 6), 1.0), ((4, 6), 1.5)):
        c["multi-layer stages" + "+".join(map(str, ks)) + f" avg w{w:g}"] = (sq, lambda m, ks=ks, w=w: l2(np.hstack(
            [l2(gem(f32(m[0]["fmap"]), 3.0))] + [w * l2(avg(f32(m[0][f"stage{k}"]))) for k in ks])))
    for sizes in ((192, 224),):
        c["stage6 w1.5, scales " + "+".join(map(str, sizes))] = ([(s, "squash") for s in sizes], lambda ms: l2(sum(
            l2(np.hstack([l2(gem(f32(m["fmap"]), 3.0)), 1.5 * l2(avg(f32(m["stage6"])))])) for m in ms)))
    for a in (0.5, 0.7):  # power-law normalisation: damps the few dominant channels
        c[f"gem3 ^{a:g}"] = (sq, lambda m, a=a: l2(gem(f32(m[0]["fmap"]), 3.0) ** a))
        c[f"gem3 ^{a:g} + stage5 avg ^{a:g} w1"] = (sq, lambda m, a=a: l2(np.hstack([
            l2(gem(f32(m[0]["fmap"]), 3.0) ** a), l2(np.abs(avg(f32(m[0]["stage5"]))) ** a
                                                    * np.sign(avg(f32(m[0]["stage5"]))))])))
    fc_w, fc_b = classifier()
    for w in (0.5, 1.0):  # the ImageNet classifier's logits: what the network thinks it sees
        c[f"gem3 + logits w{w:g}"] = (sq, lambda m, w=w: l2(np.hstack([
            l2(gem(f32(m[0]["fmap"]), 3.0)), w * l2(avg(f32(m[0]["fmap"])) @ fc_w.T + fc_b)])))
    means = stage_means()
    for w in (1.5, 2.0):  # centred on the stage's training mean, read off the batch norms (no data)
        c[f"multi-layer stages5+6 centred w{w:g}"] = (sq, lambda m, w=w: l2(np.hstack(
            [l2(gem(f32(m[0]["fmap"]), 3.0))] + [w * l2(avg(f32(m[0][f"stage{k}"])) - means[k]) for k in (5, 6)])))
    c["default + alpha-QE"] = c["default: gem3 224 squash"]
    c["multi-layer stages5+6 avg w1.5 + alpha-QE"] = c["multi-layer stages5+6 avg w1.5"]
    c["rmac (max, L=3)"] = (sq, lambda m: l2(rmac(f32(m[0]["fmap"]), np.inf)))
    c["rmac (gem3, L=3)"] = (sq, lambda m: l2(rmac(f32(m[0]["fmap"]), 3.0)))
    c["gem3 + rmac(gem3)"] = (sq, lambda m: l2(l2(gem(f32(m[0]["fmap"]), 3.0)) + l2(rmac(f32(m[0]["fmap"]), 3.0))))
    for mode in ("pad", "crop"):
        c[f"resize {mode} 224"] = ([(224, mode)], lambda m: l2(gem(f32(m[0]["fmap"]), 3.0)))
    return c


def classifier() -> tuple[np.ndarray, np.ndarray]:
    from lookalike.models.checkpoint import read_state_dict

    w = read_state_dict(weights_path(EFFNET_SPECS["effnet-lite0"]))
    return w["_fc.weight"].astype(np.float32), w["_fc.bias"].astype(np.float32)


def stage_means() -> dict[int, np.ndarray]:
    """Each stage output's mean over ImageNet training images, from the checkpoint alone: a
    block's projection ends in batch norm, whose output averages its bias (beta), and the
    residual adds sum them, so the mean is the sum of the betas of the stage's blocks."""
    from lookalike.models.checkpoint import read_state_dict
    from lookalike.models.onnx_graph import lite_blocks

    w = read_state_dict(weights_path(EFFNET_SPECS["effnet-lite0"]))
    means: dict[int, np.ndarray] = {}
    for i, b in enumerate(lite_blocks("efficientnet-lite0")):
        beta = w[f"_blocks.{i}._bn2.bias"].astype(np.float32)
        means[b.stage] = means[b.stage] + beta if b.stage in means and b.inp == b.out and b.stride == 1 else beta
    return means


def latency_ms(size: int, image: Image.Image) -> float:
    sess = graph(size)
    x = aspect_resize(image, size, "squash")[None]
    sess.run(None, {"images": x})
    runs = []
    for _ in range(LATENCY_RUNS):
        t0 = time.process_time()
        sess.run(None, {"images": x})
        runs.append(time.process_time() - t0)
    return 1000 * float(np.median(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/features-cache"))
    ap.add_argument("--only", default="", help="comma-separated substrings: score only matching candidates")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "feature_search.json")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    domains = load_domains()
    cands = candidates()
    if args.only:
        cands = {k: v for k, v in cands.items() if k.startswith("default") or any(s in k for s in args.only.split(","))}
    probe = domains[0].gallery[0]
    net_ms = {s: latency_ms(s, probe) for s in sorted({s for need, _ in cands.values() for s, _ in need})}
    print("one-image forward pass, CPU ms:", {s: round(v, 1) for s, v in net_ms.items()}, flush=True)
    rows = {}
    for name, (need, pool) in cands.items():
        row = {}
        for d in domains:
            maps = [maps_for(d, s, mode, args.cache) for s, mode in need]
            t0 = time.process_time()
            vecs = pool(maps)
            pool_ms = 1000 * (time.process_time() - t0) / len(vecs)
            row[d.name] = score(d, vecs, qe=name.endswith("+ alpha-QE"))
        row["mean"] = float(np.mean([row[d.name] for d in domains]))
        row["query_cpu_ms"] = sum(net_ms[s] for s, _ in need) + pool_ms
        row["dim"] = int(vecs.shape[1])
        rows[name] = row
        print(name, {k: round(v, 4) for k, v in row.items()}, flush=True)
    base = rows["default: gem3 224 squash"]
    names = [d.name for d in domains]
    print("\n| candidate | dim | " + " | ".join(names) + " | mean | query CPU ms |")
    print("|---|---:|" + "---:|" * (len(names) + 2))
    for name, row in rows.items():
        cells = [f"{row[n]:.3f} ({100 * (row[n] - base[n]):+.1f})" for n in names]
        print(f"| {name} | {row['dim']} | " + " | ".join(cells) +
              f" | {row['mean']:.3f} ({100 * (row['mean'] - base['mean']):+.1f}) | {row['query_cpu_ms']:.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"net_cpu_ms": net_ms, "candidates": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
