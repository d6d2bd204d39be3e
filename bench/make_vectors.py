"""Benchmark vectors whose neighbourhoods look like real image features, at any size.

Real: EfficientNet-Lite0 features of Fashion-MNIST train images (embedded once with the real
model, cached under $LOOKALIKE_CACHE/features). Extended: each vector mixes a real feature a
with one of its 10 nearest real neighbours b, w*a + (1-w)*b with w ~ U[0.5, 1), plus noise
(--noise, relative norm), re-normalised. Queries: features of Fashion-MNIST *test* images,
never part of the data (held out). Ground truth: exact top-10 by cosine.

`--check` justifies the data: for held-out real queries it compares the distribution of the
top-1 and top-10 cosine similarities against (a) real features, (b) mixed vectors made from a
disjoint pool of real features and (c) that pool repeated with noise (the old data), at the
same sizes. Matching quantiles mean a query
meets neighbours as close, and as crowded, as in a real library of that size.

    python bench/make_vectors.py --real 20000 --check                 # the distribution table
    python bench/make_vectors.py --real 20000 --n 1000000 --out /tmp/lookalike-bench/vectors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from tests.support.vectors import exact_top_k, fashion_mnist_features, mixed  # noqa: E402

K = 10
NOISE = 0.02


def neighbours(real: np.ndarray, m: int = 10) -> np.ndarray:
    """Indices of each real vector's m nearest other real vectors."""
    top = exact_top_k(real, real, m + 1)
    return top[:, 1:]


def make(real: np.ndarray, n: int, seed: int, noise: float = NOISE) -> np.ndarray:
    return mixed(real, n, seed=seed, noise=noise, partners=neighbours(real))


def repeated(real: np.ndarray, n: int, noise: float = 0.3, seed: int = 0) -> np.ndarray:
    """The old benchmark data: real vectors repeated, each copy plus Gaussian noise of norm `noise`."""
    rng = np.random.default_rng(seed)
    x = real[np.arange(n) % len(real)] + rng.normal(scale=noise / np.sqrt(real.shape[1]), size=(n, real.shape[1])).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def similarity_profile(data: np.ndarray, queries: np.ndarray) -> dict[str, list[float]]:
    """Quantiles (10/50/90 %) over queries of the top-1 and the 10th-best cosine similarity."""
    top = exact_top_k(data, queries, K)
    sims = np.einsum("qd,qkd->qk", queries, data[top])
    q = [10, 50, 90]
    return {"top1": np.percentile(sims[:, 0], q).round(4).tolist(),
            "top10": np.percentile(sims[:, K - 1], q).round(4).tolist()}


def check(real: np.ndarray, queries: np.ndarray, noise: float, ratio: int = 4) -> list[dict]:
    """Real features vs mixes of a disjoint real pool (`ratio` mixes per real source), at sizes
    up to half the real set."""
    half = len(real) // 2
    rng = np.random.default_rng(0)
    order = rng.permutation(len(real))
    target, pool = real[order[:half]], real[order[half:]]
    rows: list[dict] = []
    for size in (half // 8, half // 4, half // 2, half):
        pool_n = max(size // ratio, 100)  # mixes outnumber their real sources, as in a big benchmark set
        synth = make(pool[:pool_n], size, seed=size, noise=noise)
        rows.append({"size": size, "real": similarity_profile(target[:size], queries),
                     "mixed": similarity_profile(synth, queries), "mixed_from_real": pool_n,
                     "repeated": similarity_profile(repeated(pool[:pool_n], size), queries)})
        r, m, p = rows[-1]["real"], rows[-1]["mixed"], rows[-1]["repeated"]
        print(f"{size:>8,}  top1 real {r['top1']} mixed {m['top1']} repeated {p['top1']}\n"
              f"{'':>8}  top10 real {r['top10']} mixed {m['top10']} repeated {p['top10']}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=int, default=20000, help="real train features to use (embedded once, cached)")
    ap.add_argument("--queries", type=int, default=1000, help="held-out test-image features")
    ap.add_argument("--n", type=int, default=0, help="vectors to write (0: none)")
    ap.add_argument("--noise", type=float, default=NOISE)
    ap.add_argument("--check", action="store_true", help="compare similarity distributions with real features")
    ap.add_argument("--ratio", type=int, default=4, help="--check: mixes per real source (1M from 19,000 real: 53)")
    ap.add_argument("--model", default="effnet-lite0", help="whose features (effnet-lite0-lite1: the default model's)")
    ap.add_argument("--out", default="/tmp/lookalike-bench/vectors")
    args = ap.parse_args()
    t0 = time.perf_counter()
    real = fashion_mnist_features(args.real, model=args.model, progress=True)
    queries = fashion_mnist_features(args.queries, split="t10k", model=args.model, progress=True)
    print(f"{len(real):,} real features, {len(queries):,} held-out queries ({time.perf_counter() - t0:.0f} s)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.check:
        print("cosine similarity of held-out queries to their 1st and 10th neighbour, quantiles 10/50/90 %")
        rows = check(real, queries, args.noise, args.ratio)
        (out / f"profile-{args.model}-{len(real)}-{args.ratio}.json").write_text(json.dumps(
            {"model": args.model, "noise": args.noise, "real": len(real), "ratio": args.ratio, "rows": rows}, indent=1))
    if args.n:
        t0 = time.perf_counter()
        data = make(real, args.n, seed=1, noise=args.noise)
        np.save(out / f"data-{args.n}.npy", data)
        np.save(out / "queries.npy", queries)
        np.save(out / f"truth-{args.n}.npy", exact_top_k(data, queries, K))
        print(f"wrote {out}/data-{args.n}.npy and truth ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
