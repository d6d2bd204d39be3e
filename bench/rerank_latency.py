"""What re-ranking by query expansion costs per search: `Library.search_vector` with
`rerank="none"` (the baseline) and `rerank="qe"`, the same queries alternating, in one run.

Libraries of --sizes vectors: real EfficientNet-Lite0 features of Fashion-MNIST train images
extended by mixing neighbours (tests/support/vectors.py, as bench/search.py does), stored as
catalogue-item records so no files are needed; from 20,000 vectors the embedded store searches
through its ANN index, as a real library would. Queries: features of Fashion-MNIST test images
(never stored). The model is not run: this is the search alone, which is what QE repeats.
One BLAS thread (the environment variables above) makes CPU time a fair measure on a shared
machine: idle BLAS threads spinning under load count as CPU time.
Libraries are cached under --cache (built once: the ANN index takes minutes at 100k).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/rerank_latency.py --queries 300   # 10k and 100k
    python bench/rerank_latency.py --sizes 10000 --queries 50 --out bench/results/rerank_latency.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from tests.support.vectors import fashion_mnist_features, mixed

from lookalike import Library
from lookalike.store import ImageRecord, Upsert
from make_vectors import NOISE, neighbours  # noqa: E402  (bench/ is on sys.path when run as a script)

K = 10


def library(n: int, cache: Path) -> Path:
    """A library of n mixed real features (built once, ANN index persisted)."""
    directory = cache / f"lib-{n}"
    if (directory / "built").exists():
        return directory
    real = fashion_mnist_features(9000, split="train", progress=True)
    partners = neighbours(real)
    with Library.open(directory) as lib:
        for s in range(0, n, 20_000):
            x = mixed(real, min(20_000, n - s), seed=s, noise=NOISE, partners=partners)
            lib.store.write([Upsert(ImageRecord(f"item:bench-{s + j}", f"{s + j:064x}", 1, 0.0, 28, 28), v)
                             for j, v in enumerate(x)])
            print(f"\rwrote {min(n, s + 20_000)}/{n}", end="", flush=True)
        print()
        t0 = time.perf_counter()
        ann = lib.store.sync_index(persist=True)
        print(f"ANN index: {ann} ({time.perf_counter() - t0:.0f} s)")
    (directory / "built").touch()
    return directory


def measure(directory: Path, queries: np.ndarray) -> dict:
    cpu: dict[str, list[float]] = {"none": [], "qe": []}
    wall: dict[str, list[float]] = {"none": [], "qe": []}
    changed = 0
    with Library.open(directory, create=False) as lib:
        lib.search_vector(queries[0], K, rerank="none")  # load the matrix / index outside the timing
        for i, q in enumerate(queries):
            found = {}
            for mode in (("none", "qe") if i % 2 == 0 else ("qe", "none")):  # alternate: neither always runs warm
                t0, c0 = time.perf_counter(), time.process_time()
                found[mode] = [h.id for h in lib.search_vector(q, K, rerank=mode)]
                wall[mode].append((time.perf_counter() - t0) * 1000)
                cpu[mode].append((time.process_time() - c0) * 1000)
            changed += found["none"] != found["qe"]
        ann, n = lib.store.sync_index(), len(lib)
    med = {f"{kind}_{mode}_ms": round(statistics.median(v[mode]), 3) for kind, v in (("cpu", cpu), ("wall", wall))
           for mode in ("none", "qe")}
    return {"n": n, "ann": ann, **med, "cpu_ratio": round(med["cpu_qe_ms"] / med["cpu_none_ms"], 2),
            "cpu_extra_ms": round(med["cpu_qe_ms"] - med["cpu_none_ms"], 3), "results_changed": changed,
            "queries": len(queries)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rerank-cache"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    queries = fashion_mnist_features(args.queries, split="t10k")
    rows = [measure(library(int(n), args.cache), queries) for n in args.sizes.split(",")]
    print("| images | search | plain ms (CPU) | +qe ms (CPU) | extra ms | ratio | wall plain / +qe ms | top-10 changed |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {'ANN' if r['ann'] else 'exact'} | {r['cpu_none_ms']:.2f} | {r['cpu_qe_ms']:.2f} | "
              f"{r['cpu_extra_ms']:+.2f} | {r['cpu_ratio']:.2f}x | {r['wall_none_ms']:.2f} / {r['wall_qe_ms']:.2f} | "
              f"{r['results_changed']}/{r['queries']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"k": K, "rows": rows}, indent=1) + "\n")
        print("wrote", args.out)


if __name__ == "__main__":
    main()
