"""CPU time to embed one image with each model, interleaved so load hits them alike.

    python bench/feature_latency.py                                   # effnet-lite0 vs effnet-lite0-ml
    python bench/feature_latency.py --models effnet-lite0-avg,effnet-lite0 --runs 100

Median `time.process_time` of one `embed_batch` call (forward pass + ImageNet tags) on a
224 px photo, and each model's ratio to the first (the baseline)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from lookalike.demo.samples import sample_photos
from lookalike.models import get_extractor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="effnet-lite0,effnet-lite0-ml", help="comma-separated; the first is the baseline")
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    image = sample_photos()["chelsea"]
    exts = [get_extractor(m) for m in args.models.split(",")]
    inputs = {e.name: e.preprocess(image)[None] for e in exts}
    for e in exts:  # warm up: session creation, first-run allocations
        e.embed_batch(inputs[e.name])
    times: dict[str, list[float]] = {e.name: [] for e in exts}
    for _ in range(args.runs):
        for e in exts:
            t0 = time.process_time()
            e.embed_batch(inputs[e.name])
            times[e.name].append(time.process_time() - t0)
    base = float(np.median(times[exts[0].name]))
    for e in exts:
        ms = float(np.median(times[e.name]))
        print(f"{e.name}: {1000 * ms:.1f} CPU ms per image, x{ms / base:.2f} the baseline ({e.dim} dims)")


if __name__ == "__main__":
    main()
