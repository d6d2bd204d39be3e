"""Time of the API's scan searches on a library: a DICOM upload searched per image, grouped by
series (`group=series`), and in another window (`window=bone`: the query is rendered again).

    python bench/scan_search_api.py LIBRARY QUERY.dcm [--runs 7]

Runs the service functions behind POST /api/search in-process (no HTTP), k=10, and prints the
median milliseconds of each."""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from lookalike import Library
from lookalike.api.service import Service


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("library", type=Path)
    ap.add_argument("query", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    data = args.query.read_bytes()
    with Library.open(args.library, create=False) as lib:
        svc = Service(lib)
        cases = {"per image": {}, "group=series": {"group": "series"}, "window=bone": {"window": "bone"},
                 "group=series, window=bone": {"group": "series", "window": "bone"}}
        svc.search_bytes(data, args.query.name, 10, None, None)  # warm-up: model session, caches
        print(f"{len(lib)} entries; query {args.query.name}")
        for name, extra in cases.items():
            times, hits = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                result = svc.search_bytes(data, args.query.name, 10, None, None, **extra)
                times.append((time.perf_counter() - t0) * 1000)
                hits = len(result.hits)
            print(f"{name:28s} median {statistics.median(times):7.1f} ms  ({hits} results)")


if __name__ == "__main__":
    main()
