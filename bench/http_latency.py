"""Search latency through HTTP: `lookalike serve` in a subprocess on 127.0.0.1, queried by
1,000 sequential and 1,000 16-concurrent requests, for two kinds of search:

- upload:  POST /api/search with a JPEG the library has never seen (decode + model + search);
- similar: GET /api/images/{id}/similar ("more like this": stored vector, no model).

Baseline, measured in the same run: the same searches through `Library.search` in-process
(no HTTP), so the ratios show what the HTTP layer costs. Bounded: every phase stops after
--max-seconds. Prints a table and writes JSON.

    python bench/http_latency.py                       # builds the sample gallery in a temp dir
    python bench/http_latency.py --library demo-library --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from common import free_port, indexed_sample_gallery, start_serve_process, unseen_queries
from lookalike import Library


def summarise(latencies_ms: list[float], wall_s: float, errors: int) -> dict:
    arr = np.asarray(latencies_ms)
    return {"requests": len(arr), "errors": errors, "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p99_ms": round(float(np.percentile(arr, 99)), 2), "mean_ms": round(float(arr.mean()), 2),
            "per_second": round(len(arr) / wall_s, 1) if wall_s > 0 else None, "wall_s": round(wall_s, 2)}


def run_phase(fn, n: int, concurrency: int, max_seconds: float) -> dict:
    """`fn(i)` performs request i and returns True when the answer was right."""
    latencies: list[float] = []
    errors = 0
    t_start = time.perf_counter()
    stop_at = t_start + max_seconds

    def one(i: int) -> tuple[float, bool] | None:
        if time.perf_counter() > stop_at:
            return None
        t0 = time.perf_counter()
        ok = fn(i)
        return (time.perf_counter() - t0) * 1000, ok

    if concurrency == 1:
        results = [one(i) for i in range(n)]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - t_start
    for r in results:
        if r is not None:
            latencies.append(r[0])
            errors += not r[1]
    return summarise(latencies, wall, errors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", type=Path, help="existing library (default: build the sample gallery in a temp dir)")
    ap.add_argument("--requests", type=int, default=1000, help="requests per phase (default 1000)")
    ap.add_argument("--concurrency", type=int, default=16, help="parallel clients in the concurrent phases (default 16)")
    ap.add_argument("--max-seconds", type=float, default=240, help="stop each phase after this long (default 240)")
    ap.add_argument("--baseline-requests", type=int, default=200, help="in-process searches per baseline (default 200)")
    ap.add_argument("--only", choices=["upload", "similar"], help="measure one kind of search only")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", type=Path, default=Path("artifacts/bench-http-latency.json"), help="where to write results")
    args = ap.parse_args()
    con = Console(width=150)

    tmp = None
    library = args.library
    if library is None:
        tmp = tempfile.TemporaryDirectory(prefix="lookalike-bench-")
        root = Path(tmp.name)
        con.print("building and indexing the sample gallery (98 images)...")
        library = indexed_sample_gallery(root)

    queries = unseen_queries()
    with Library.open(library, create=False) as lib:
        ids = [r.id for r in lib.records()]
        expected_upload = [lib.search(q, k=args.k)[0].id for q in queries]  # warms the model, too
        expected_similar = {i: lib.search(i, k=args.k)[0].id for i in ids[: args.baseline_requests]}
        n_base = args.baseline_requests
        base = {
            "upload": run_phase(lambda i: lib.search(queries[i % len(queries)], k=args.k)[0].id == expected_upload[i % len(queries)],
                                n_base, 1, args.max_seconds),
            "similar": run_phase(lambda i: lib.search(ids[i % len(ids)], k=args.k) is not None, n_base, 1, args.max_seconds),
        }
        n_images = len(lib)

    port = free_port()
    server = start_serve_process(library, port)
    results: dict[str, dict] = {}
    try:
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as client:
            def upload(i: int) -> bool:
                q = i % len(queries)
                r = client.post(f"/api/search?k={args.k}", files={"file": ("q.jpg", queries[q], "image/jpeg")})
                return r.status_code == 200 and r.json()["results"][0]["id"] == expected_upload[q]

            def similar(i: int) -> bool:
                id_ = ids[i % len(ids)]
                r = client.get(f"/api/images/{id_}/similar", params={"k": args.k})
                want = expected_similar.get(id_)
                return r.status_code == 200 and (want is None or r.json()["results"][0]["id"] == want)

            for kind, fn in (("upload", upload), ("similar", similar)):
                if args.only and kind != args.only:
                    continue
                for i in range(min(20, args.requests)):  # warm-up: connections, thumbnails of nothing, caches
                    fn(i)
                for mode, conc in (("sequential", 1), (f"{args.concurrency}-concurrent", args.concurrency)):
                    con.print(f"{kind} {mode}: {args.requests} requests...")
                    results[f"{kind}/{mode}"] = run_phase(fn, args.requests, conc, args.max_seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if tmp is not None:
            tmp.cleanup()

    table = Table(title=f"HTTP search latency, {n_images} images, k={args.k}, {os.cpu_count()} CPUs "
                        "(ratio = HTTP p50 / in-process p50, same run)", title_justify="left")
    for col in ("search", "mode", "requests", "errors", "p50 ms", "p99 ms", "mean ms", "req/s", "p50 ratio"):
        table.add_column(col, justify="left" if col in ("search", "mode") else "right")
    for kind in ("upload", "similar"):
        b = base[kind]
        table.add_row(kind, "in-process baseline", str(b["requests"]), str(b["errors"]), f"{b['p50_ms']:.1f}",
                      f"{b['p99_ms']:.1f}", f"{b['mean_ms']:.1f}", f"{b['per_second']:.0f}", "1.00")
        for key, r in results.items():
            if key.startswith(kind + "/"):
                table.add_row(kind, key.split("/", 1)[1], str(r["requests"]), str(r["errors"]), f"{r['p50_ms']:.1f}",
                              f"{r['p99_ms']:.1f}", f"{r['mean_ms']:.1f}", f"{r['per_second']:.0f}",
                              f"{r['p50_ms'] / b['p50_ms']:.2f}")
    con.print(table)

    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"images": n_images, "k": args.k, "cpus": os.cpu_count(), "python": platform.python_version(),
              "requests_per_phase": args.requests, "concurrency": args.concurrency,
              "baseline_in_process": base, "http": results,
              "p50_ratio_vs_baseline": {key: round(r["p50_ms"] / base[key.split("/")[0]]["p50_ms"], 3) for key, r in results.items()}}
    args.json.write_text(json.dumps(report, indent=2))
    con.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
