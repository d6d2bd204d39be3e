"""Cost of the Milvus stores against the embedded store, on the same vectors.

For each size N: write N records with 1280-d unit vectors through the store protocol
(batches of 1000) and flush them (Milvus), then time single-query top-10 searches (p50/p99)
and measure recall@10 against the embedded store's exact answer. Targets: embedded (baseline),
Milvus Lite (HNSW) and a Milvus 2.3.5 standalone server (HNSW) that this script starts
(`--uri` to use a running server instead). Prints ratios to the embedded store and writes JSON.

Vectors: real model features of the bundled photos and their edits are too few for these
sizes, so vectors are drawn around 500 random centres (clustered like image features, which
makes ANN harder than uniform noise), L2-normalised.

    PYTHONPATH=src python bench/milvus_vs_embedded.py --sizes 10000 50000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.milvus_server

from lookalike.store import ImageRecord, Upsert, open_store  # noqa: E402

DIM = 1280
BATCH = 1000


def vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(500, DIM)).astype(np.float32)
    v = centres[rng.integers(0, 500, n)] + 0.6 * rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def records(n: int) -> list[ImageRecord]:
    return [ImageRecord(path=f"/photos/{i // 1000:04d}/{i:08d}.jpg", sha256=f"{i:064x}", size=100_000 + i, mtime=1.7e9 + i,
                        width=640, height=480, tags=[("tabby, tabby cat", 0.5)]) for i in range(n)]


def run(spec: str | None, directory: Path, data: np.ndarray, queries: np.ndarray, k: int, ef: int | None) -> dict:
    store = open_store(spec, directory)
    try:
        store.set_meta({"model": "bench", "dim": str(DIM)})
        recs = records(len(data))
        t0 = time.perf_counter()
        for i in range(0, len(data), BATCH):
            store.write([Upsert(r, v) for r, v in zip(recs[i:i + BATCH], data[i:i + BATCH])])
        write_s = time.perf_counter() - t0
        if hasattr(store, "flush"):
            store.flush()  # Milvus: seal the rows so they are indexed (counted in the insert time)
        insert_s = time.perf_counter() - t0
        index_wait_s = 0.0
        if spec and "http" in spec:  # until its index is built and loaded, a server's interim index answers
            t0 = time.perf_counter()
            store.sync_index()
            index_wait_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.search(queries[:1], k)  # first query: loads / builds what the store needs
        first_ms = (time.perf_counter() - t0) * 1000
        times, answers = [], []
        for q in queries:
            t0 = time.perf_counter()
            answers.append([i for i, _ in (store.search(q[None], k, ef=ef) if ef and spec else store.search(q[None], k))[0]])
            times.append((time.perf_counter() - t0) * 1000)
        return {"insert_s": insert_s, "write_s": write_s, "index_wait_s": index_wait_s,
                "insert_per_s": len(data) / insert_s, "first_query_ms": first_ms,
                "p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
                "size_bytes": store.size_bytes(), "answers": answers}
    finally:
        drop = getattr(store, "drop", None)
        if drop is not None and spec and "http" in spec:
            drop()
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--ef", type=int, help="HNSW search breadth for Milvus [default: the store's, max(64, k)]")
    ap.add_argument("--uri", help="a running Milvus server (http://host:port); default: start milvus-server 2.3.5")
    ap.add_argument("--no-server", action="store_true", help="skip the standalone server")
    ap.add_argument("--out", default="bench/results/milvus_vs_embedded.json")
    args = ap.parse_args()

    server = None
    uri = args.uri
    if not uri and not args.no_server:
        from tests.support.milvus_server import start_server

        t0 = time.perf_counter()
        server = start_server()
        uri = server[1]
        print(f"milvus-server 2.3.5 started in {time.perf_counter() - t0:.1f} s at {uri}")
    results: list[dict] = []
    try:
        for n in args.sizes:
            # Queries are held out from the same distribution: drawn around other centres they
            # would have near-tied neighbours, which no ANN index ranks reliably.
            both = vectors(n + args.queries, seed=n)
            data, queries = both[:n], both[n:]
            with tempfile.TemporaryDirectory(prefix="lookalike-bench-") as tmp:
                targets = {"embedded": None, "milvus-lite": f"milvus:{tmp}/lib.db"}
                if uri:
                    targets["milvus-standalone"] = f"milvus:{uri}#bench_{uuid.uuid4().hex[:8]}"
                rows = {name: run(spec, Path(tmp) / name, data, queries, args.k, args.ef) for name, spec in targets.items()}
            exact = rows["embedded"]["answers"]
            base = rows["embedded"]
            print(f"\nN={n} vectors of {DIM}-d, {args.queries} queries, top-{args.k}")
            print(f"{'store':<18}{'insert s':>10}{'ratio':>8}{'p50 ms':>9}{'ratio':>8}{'p99 ms':>9}{'ratio':>8}"
                  f"{'recall':>8}{'1st ms':>9}{'index s':>9}")
            for name, r in rows.items():
                recall = float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(r.pop("answers"), exact)]))
                r.update(store=name, n=n, ef=args.ef, dim=DIM, queries=args.queries, k=args.k, recall_at_k=recall,
                         insert_ratio=r["insert_s"] / base["insert_s"], p50_ratio=r["p50_ms"] / base["p50_ms"],
                         p99_ratio=r["p99_ms"] / base["p99_ms"])
                results.append(r)
                print(f"{name:<18}{r['insert_s']:>10.2f}{r['insert_ratio']:>8.1f}{r['p50_ms']:>9.2f}{r['p50_ratio']:>8.1f}"
                      f"{r['p99_ms']:>9.2f}{r['p99_ratio']:>8.1f}{recall:>8.3f}{r['first_query_ms']:>9.0f}{r['index_wait_s']:>9.1f}")
    finally:
        if server is not None:
            from tests.support.milvus_server import stop_server

            stop_server(server[0], server[2])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
