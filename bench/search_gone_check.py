"""What dropping deleted files from results costs a search: `Library.search` by id (which
stats each hit and asks the index for a few more than k) against the bare store search it
wraps, on the sample gallery, and with a third of the gallery deleted.

    python bench/search_gone_check.py --repeat 300"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import Library
from lookalike.demo.samples import build_gallery


def p50_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_gallery(root / "gallery")
        with Library.open(root / "lib") as lib:
            lib.add([root / "gallery"])
            records = lib.records()
            query = records[0].id
            vec = lib.store.vectors([query])

            def bare() -> None:
                scored = lib.store.search(vec, args.k, None, [query])[0]
                lib.store.get([i for i, _ in scored])

            print(f"{len(records)} images, k={args.k}, median of {args.repeat}")
            print("| search | ms |\n|---|---|")
            print(f"| store search + records (no file check) | {p50_ms(bare, args.repeat):.3f} |")
            print(f"| Library.search (a stat per hit) | {p50_ms(lambda: lib.search(query, k=args.k), args.repeat):.3f} |")
            rng = np.random.default_rng(0)
            for r in rng.choice(records[1:], len(records) // 3, replace=False):
                os.remove(r.path)
            t0 = time.perf_counter()
            hits = lib.search(query, k=args.k)
            first = (time.perf_counter() - t0) * 1000
            assert len(hits) == args.k and all(os.path.exists(h.path) for h in hits)
            print(f"| first search after deleting a third of the files (drops and forgets them) | {first:.3f} |")
            print(f"| Library.search afterwards | {p50_ms(lambda: lib.search(query, k=args.k), args.repeat):.3f} |")


if __name__ == "__main__":
    main()
