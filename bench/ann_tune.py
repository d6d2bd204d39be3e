"""What the ANN index is made of, side by side with other HNSW libraries, on the same data in
one run: every figure next to exact search measured in the same run.

Lookalike rows build the index exactly as the embedded store does (`ann_index.build_graph`:
uncentred PCA, scalar-quantised HNSW) straight from the vectors, skipping the SQLite ingest,
and search through `AnnIndex.search` (graph walk + exact re-rank from the memory-mapped
float32 file), one query at a time. Other rows: faiss HNSW on raw float32 (M=32,
efConstruction=200), hnswlib and usearch (same M and construction effort; the `bench` extra).

Data: the same rows as bench/search.py (`--data mixed`: real Lite0 features of Fashion-MNIST
train images mixed with real neighbours), cached under --workdir; queries held out (test images).

    python bench/ann_tune.py --n 100000 --base 9000 \\
        --configs pca=256,efc=80 pca=384,efc=80 pca=384,efc=200 --others faiss hnswlib usearch
    python bench/ann_tune.py --n 100000 --configs pca=384,rerank=48 --ef 64 96 160

A config is comma-separated AnnParams fields (pca=pca_dim, m, efc=ef_construction,
bits=quant_bits, rerank); unset fields take the defaults. Memory is the index's serialised size
(what it holds in anonymous RAM: graph links + compact vectors), not counting the re-rank
file (page cache). Latency: single-query p50/p99 on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
sys.path.insert(0, str(Path(__file__).resolve().parent))  # search.py

import search as bench_search  # noqa: E402
from lookalike.store.ann_index import AnnIndex, AnnParams, _Manifest, _map, build_graph  # noqa: E402

K = 10
ALIASES = {"pca": "pca_dim", "efc": "ef_construction", "bits": "quant_bits"}


def dataset(n: int, base_n: int, queries_n: int, work: Path, model: str = "effnet-lite0"
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(memory-mapped float32 [n, dim] vectors, queries, exact top-10 ids), cached on disk."""
    tag = f"mixed-{base_n}-{n}" + ("" if model == "effnet-lite0" else f"-{model}")  # old caches keep their names
    vec_path, truth_path = work / f"data-{tag}.f32", work / f"truth-{tag}-{queries_n}.npy"
    q_path = work / (f"queries-{queries_n}.npy" if model == "effnet-lite0" else f"queries-{queries_n}-{model}.npy")
    base = bench_search.features("train", base_n, work, model)
    queries = bench_search.features("test", queries_n, work, model)
    dim = base.shape[1]
    if not vec_path.exists():
        bench_search.DATA = "mixed"
        tmp = vec_path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for s in range(0, n, 20_000):  # the rows bench/search.py ingests
                f.write(bench_search.chunk(base, s, min(n, s + 20_000), 0.0).tobytes())
                print(f"\rdata {min(n, s + 20_000)}/{n}", end="", file=sys.stderr, flush=True)
        os.replace(tmp, vec_path)
        print(file=sys.stderr)
    data = np.memmap(vec_path, np.float32, "r", shape=(n, dim))
    if not truth_path.exists():
        truth = np.empty((len(queries), K), np.int64)
        best_s = np.full((len(queries), K), -np.inf, np.float32)
        for s in range(0, n, 50_000):
            best_s, truth = bench_search.merge_topk(best_s, truth, queries @ np.asarray(data[s:s + 50_000]).T, s)
        np.save(truth_path, truth)
    np.save(q_path, queries)
    return data, queries, np.load(truth_path)


def recall(found: list, truth: np.ndarray) -> float:
    return float(np.mean([len(set(np.asarray(f)[:K].tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def timed(fn, queries: np.ndarray) -> tuple[list, dict]:
    found, times = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append(fn(q))
        times.append(time.perf_counter() - t0)
    t = np.array(times) * 1000
    return found, {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))}


def parse_config(text: str) -> AnnParams:
    fields = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        fields[ALIASES.get(key, key)] = int(value)
    return replace(AnnParams(), **fields)


def exact_row(data: np.ndarray, queries: np.ndarray, truth: np.ndarray, n_lat: int) -> dict:
    """Exact search over the vectors as they lie (in RAM up to 1 GB, else memory-mapped)."""
    matrix = np.asarray(data) if data.nbytes <= 1e9 else data
    found, lat = timed(lambda q: np.argpartition(-(matrix @ q), K)[:K], queries[:n_lat])
    return {"method": "exact (numpy)", "build_s": 0.0, "mem_mb": data.nbytes / 1e6, **lat,
            "recall": recall(found, truth[:n_lat]), "ef": None}


def lookalike_rows(name: str, params: AnnParams, data: np.ndarray, queries: np.ndarray,
                   truth: np.ndarray, efs: list[int], reranks: list[int]) -> list[dict]:
    import faiss

    n, dim = data.shape
    t0, c0 = time.perf_counter(), time.process_time()
    pca, graph = build_graph(data, params, lambda d: print(f"\r{name} {d}/{n}", end="", file=sys.stderr, flush=True))
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(file=sys.stderr)
    mem = len(faiss.serialize_index(graph)) + pca.nbytes + n * 9  # + ids (int64) and dead flags
    manifest = _Manifest(1, dim, pca.shape[1], params.m, params.ef_construction, "", "", "", n, 0, params.quant_bits)
    index = AnnIndex(Path("."), manifest, graph, pca, _map(Path(data.filename), n, dim),  # type: ignore[attr-defined]
                     np.arange(n, dtype=np.int64), np.zeros(n, bool))
    # Open + first search as a user's process pays it: read the graph file, map the vectors.
    graph_path = Path(data.filename).with_suffix(".graph.tmp")  # type: ignore[attr-defined]
    faiss.write_index(graph, str(graph_path))
    t0 = time.perf_counter()
    opened = AnnIndex(Path("."), manifest, faiss.read_index(str(graph_path)), pca, _map(Path(data.filename), n, dim),  # type: ignore[attr-defined]
                      np.arange(n, dtype=np.int64), np.zeros(n, bool))
    opened.search(queries[:1], K, params.ef)
    open_s = time.perf_counter() - t0
    graph_path.unlink()
    del opened
    rows = []
    for rerank in reranks:
        index.rerank = rerank or params.rerank
        for ef in efs:
            if index.rerank and index.rerank >= ef and rerank:
                continue
            found, lat = timed(lambda q, ef=ef: [i for i, _ in index.search(q[None], K, ef)[0]], queries)
            rows.append({"method": f"lookalike {name}", "params": vars(params), "ef": ef, "rerank": index.rerank or ef,
                         "build_s": build_s, "build_cpu_s": build_cpu, "mem_mb": mem / 1e6, "open_s": open_s,
                         "recall": recall(found, truth), **lat})
            print(f"  {name} ef={ef} rerank={index.rerank or ef}: recall {rows[-1]['recall']:.3f} p50 {lat['p50_ms']:.2f} ms "
                  f"p99 {lat['p99_ms']:.2f} ms", file=sys.stderr, flush=True)
    return rows


def other_rows(which: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, efs: list[int],
               m: int = 32, efc: int = 200) -> list[dict]:
    """Another library's HNSW over the raw float32 vectors (inner product = cosine here)."""
    n, dim = data.shape
    index: Any  # one of three libraries' index types
    t0, c0 = time.perf_counter(), time.process_time()
    if which == "faiss":
        import faiss

        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        for s in range(0, n, 50_000):
            index.add(np.ascontiguousarray(data[s:s + 50_000]))
        mem = len(faiss.serialize_index(index))
        faiss.omp_set_num_threads(1)

        def search(q, ef):
            return index.search(q[None], K, params=faiss.SearchParametersHNSW(efSearch=ef))[1][0]  # type: ignore[attr-defined]
    elif which == "hnswlib":
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, ef_construction=efc, M=m)
        for s in range(0, n, 50_000):
            index.add_items(np.asarray(data[s:s + 50_000]), np.arange(s, min(n, s + 50_000)))
        index.set_num_threads(1)
        mem = n * (dim * 4 + m * 2 * 4 + 8 + 4)  # level-0 vectors + links + labels (upper levels omitted)

        def search(q, ef):
            index.set_ef(max(ef, K))
            return index.knn_query(q[None], k=K)[0][0]
    elif which == "usearch":
        from usearch.index import Index

        index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=m, expansion_add=efc)
        for s in range(0, n, 50_000):
            index.add(np.arange(s, min(n, s + 50_000)), np.asarray(data[s:s + 50_000]))
        mem = index.memory_usage

        def search(q, ef):
            index.expansion_search = ef
            return index.search(q, K, threads=1).keys
    else:
        raise SystemExit(f"unknown library {which!r}")
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = []
    for ef in efs:
        found, lat = timed(lambda q, ef=ef: search(q, ef), queries)
        rows.append({"method": f"{which} HNSW float32 M={m} efC={efc}", "ef": ef, "build_s": build_s,
                     "build_cpu_s": build_cpu, "mem_mb": mem / 1e6, "recall": recall(found, truth), **lat})
        print(f"  {which} ef={ef}: recall {rows[-1]['recall']:.3f} p50 {lat['p50_ms']:.2f} ms", file=sys.stderr, flush=True)
    return rows


def table(result: dict) -> str:
    exact = result["exact"]
    lines = [f"n={result['n']:,} x {result['dim']}-d, {result['queries']} held-out queries, recall@{K}; "
             f"exact: p50 {exact['p50_ms']:.2f} ms, {exact['mem_mb']:.0f} MB",
             f"{'method':<44} {'ef':>4} {'pool':>4} {'build s':>8} {'MB':>6} {'recall':>7} {'p50 ms':>7} {'p99 ms':>7} {'x exact':>8}"]
    for r in result["rows"]:
        lines.append(f"{r['method']:<44} {r['ef']:>4} {r.get('rerank', '-'):>4} {r['build_s']:8.1f} {r['mem_mb']:6.0f} "
                     f"{r['recall']:7.3f} {r['p50_ms']:7.3f} {r['p99_ms']:7.2f} {exact['p50_ms'] / r['p50_ms']:7.0f}x")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--base", type=int, default=9_000, help="real Fashion-MNIST train features the data is mixed from")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--model", default="effnet-lite0", help="whose features the data is made of (effnet-lite0-lite1: the default model's)")
    ap.add_argument("--configs", nargs="*", default=["pca=256"], help="Lookalike index configs (see above)")
    ap.add_argument("--ef", type=int, nargs="+", default=[48, 64, 96, 160])
    ap.add_argument("--rerank", type=int, nargs="+", default=[0], help="re-rank pool sizes (0: all ef)")
    ap.add_argument("--others", nargs="*", default=[], choices=["faiss", "hnswlib", "usearch"])
    ap.add_argument("--others-ef", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--workdir", default="/tmp/lookalike-bench")
    ap.add_argument("--out", default=None, help="JSON [default: ann-tune-N.json in --workdir]")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    data, queries, truth = dataset(args.n, args.base, args.queries, work, args.model)
    # Exact single queries read every vector: 50 from RAM, 5 from a memory-mapped file over 1 GB.
    exact = exact_row(data, queries, truth, min(len(queries), 50 if data.nbytes <= 1e9 else 5))
    result = {"n": args.n, "model": args.model, "dim": data.shape[1], "base_images": args.base, "queries": len(queries),
              "cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "exact": exact, "rows": []}
    out = Path(args.out or work / f"ann-tune-{args.n}.json")
    for text in args.configs:
        result["rows"] += lookalike_rows(text, parse_config(text), data, queries, truth, args.ef, args.rerank)
        out.write_text(json.dumps(result, indent=1))
    for which in args.others:
        result["rows"] += other_rows(which, data, queries, truth, args.others_ef)
        out.write_text(json.dumps(result, indent=1))
    result["load_after"] = os.getloadavg()[0]
    out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
