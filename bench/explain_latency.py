"""Time `explain` per pair (the page's "Why did it match?" asks one per result shown).

    python bench/explain_latency.py [--pairs 20]

Indexes the bundled photos (originals only) into a temporary library, warms the feature-map
graph, then times Library.explain on image pairs (decode both files, one forward pass of two
images, the two maps) and the PNG rendering. Prints the median wall and CPU time."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lookalike import Library
from lookalike.demo.samples import build_gallery
from lookalike.engine.explain import render_png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--model", default="effnet-lite0")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_gallery(root / "g", with_variants=False)
        with Library.open(root / "lib", model=args.model) as lib:
            lib.add([root / "g"])
            ids = [r.id for r in lib.records()]
            lib.explain(ids[0], ids[1])  # builds and loads the feature-map graph once
            wall, cpu, png, png_cpu = [], [], [], []
            for i in range(args.pairs):
                a, b = ids[i % len(ids)], ids[(i + 1) % len(ids)]
                t0, c0 = time.perf_counter(), time.process_time()
                explanation, qi, ri = lib.explain(a, b)
                wall.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
                t1, c1 = time.perf_counter(), time.process_time()
                render_png(qi, ri, explanation, "result")
                png.append((time.perf_counter() - t1) * 1000)
                png_cpu.append((time.process_time() - c1) * 1000)
    print(f"{args.model}: explain median {statistics.median(wall):.0f} ms wall, {statistics.median(cpu):.0f} ms CPU per pair; "
          f"PNG (one side) {statistics.median(png):.0f} ms wall, {statistics.median(png_cpu):.0f} ms CPU; "
          f"{args.pairs} pairs of 512-px JPEG photos")


if __name__ == "__main__":
    main()
