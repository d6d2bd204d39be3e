"""Bulk neighbours at scale: time and peak memory of `catalogue neighbours` for N items.

    python bench/catalogue_neighbours.py --n 100000 -k 20

The items are written straight into a fresh embedded library as item records with clustered
random 1280-d vectors (what the model's vectors look like to the index: tight groups), so
the run measures the neighbour search and the parquet writing, not image embedding. Both
the ANN index build (done once, as `lookalike index` does after a large import) and the
neighbour pass are timed; peak RSS is the process's maximum resident set.
Writes bench/results/catalogue_neighbours.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import Library
from lookalike.engine.catalogue.neighbours import neighbour_rows, write_neighbours
from lookalike.models.base import l2_normalize
from lookalike.store import ImageRecord, Upsert


def fill(lib: Library, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.standard_normal((max(n // 50, 1), lib.dim)).astype(np.float32))
    categories = [f"cat{c}" for c in range(20)]
    for start in range(0, n, 5000):
        m = min(5000, n - start)
        which = rng.integers(len(centres), size=m)
        vectors = l2_normalize(centres[which] + 0.35 * rng.standard_normal((m, lib.dim)).astype(np.float32) / np.sqrt(lib.dim) * 8)
        ups = [Upsert(ImageRecord(f"item:SKU-{start + i:07d}", f"{start + i:064x}", 1000, 0.0, 224, 224,
                                  fields={"item": f"SKU-{start + i:07d}", "category": categories[int(which[i]) % 20]}),
                      vectors[i]) for i in range(m)]
        lib.store.write(ups)
        print(f"\rfilled {start + m}/{n}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("-k", type=int, default=20)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "catalogue_neighbours.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-neighbours-") as tmp:
        with Library.open(Path(tmp) / "lib") as lib:
            fill(lib, args.n)
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            t0 = time.perf_counter()
            ann = lib.sync_index()
            t_index = time.perf_counter() - t0
            t1 = time.perf_counter()
            rows = write_neighbours(neighbour_rows(lib, args.k, batch=args.batch), Path(tmp) / "n.parquet")
            t_neighbours = time.perf_counter() - t1
            size = (Path(tmp) / "n.parquet").stat().st_size
    result = {"items": args.n, "k": args.k, "batch": args.batch, "ann_index": ann, "rows": rows,
              "index_build_s": round(t_index, 1), "neighbours_s": round(t_neighbours, 1),
              "items_per_s": round(args.n / t_neighbours, 1), "parquet_mb": round(size / 1e6, 1),
              "peak_rss_mb_before": round(rss_before / 1024),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
