"""Time `explain` per pair (the page's "Why did it match?" asks one per result shown).

    python bench/explain_latency.py [--pairs 20]

Indexes the bundled photos (originals only) into a temporary library, warms the feature-map
graph, then times, per pair of 512-px JPEG photos (median wall and CPU milliseconds):

- new query: Library.explain with a query not seen before (`lookalike explain photo.jpg id:N`:
  both files decoded, one forward pass of both), the baseline;
- same query: Library.explain of one indexed query against a new result each time, as the
  page asks (the query's decoded image and feature map are reused: one image decoded and run);
- the PNGs: both images (the CLI's why.png) and the result side alone (what the page shows);
- the API: GET /api/explain?query=Q&result=R&side=result through a real server on 127.0.0.1,
  as the page asks; its CPU time counts the server and the HTTP client (one process).

Prints each with its ratio to the baseline. CPU time (time.process_time) is what the load of
a shared machine inflates least."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx

from lookalike import Library
from lookalike.api import create_app
from lookalike.demo.samples import build_gallery
from lookalike.engine.explain import render_png

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server import BackgroundServer  # noqa: E402

from common import median_ms as timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--model", default="effnet-lite0")
    args = ap.parse_args()
    rows: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_gallery(root / "g", with_variants=False)
        with Library.open(root / "lib", model=args.model) as lib:
            lib.add([root / "g"])
            records = lib.records()
            ids, paths = [r.id for r in records], [Path(r.path) for r in records]
            n = len(ids)
            lib.explain(ids[0], ids[1])  # builds and loads the feature-map graph once

            def pair(i: int) -> tuple[int, int]:  # a pair not seen before by the cache (8 entries)
                return i % n, (i + 1 + i // n) % n

            rows["new query (both images run)"] = timed(args.pairs, lambda i: lib.explain(paths[pair(i)[0]], ids[pair(i)[1]]))
            query = ids[0]
            lib.explain(query, ids[1])
            rows["same query, new result"] = timed(args.pairs, lambda i: lib.explain(query, ids[1 + i % (n - 1)]))
            explanation, qi, ri = lib.explain(ids[0], ids[1])
            rows["PNG, both images (CLI)"] = timed(args.pairs, lambda i: render_png(qi, ri, explanation))
            rows["PNG, result side (page)"] = timed(args.pairs, lambda i: render_png(qi, ri, explanation, "result"))
        with BackgroundServer(create_app(root / "lib")) as url, httpx.Client(base_url=url, timeout=60) as client:
            def get(i: int) -> None:
                r = client.get("/api/explain", params={"query": query, "result": ids[1 + i % (n - 1)], "side": "result"})
                assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text

            get(0)  # this server's graph
            rows["API GET side=result, same query"] = timed(args.pairs, get)
    base_wall, base_cpu = rows["new query (both images run)"]
    print(f"{args.model}, {args.pairs} pairs of 512-px JPEG photos, feature-map graph warm (median per pair):")
    print("| step | wall ms | CPU ms | CPU vs new query |")
    print("|---|---:|---:|---:|")
    for name, (wall, cpu) in rows.items():
        print(f"| {name} | {wall:.0f} | {cpu:.0f} | {cpu / base_cpu:.2f}x |")


if __name__ == "__main__":
    main()
