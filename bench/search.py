"""Search at scale: exact (numpy / faiss flat) vs Lookalike's embedded store (ANN index at the
default and tuned `ef`) vs Milvus Lite, on the same vectors and held-out queries, in one run.

Vectors (`--data mixed`, the default): real EfficientNet-Lite0 features of Fashion-MNIST
*train* images (embedded once with the real model, cached as .npy), extended to N by mixing
each real feature with one of its 10 nearest real neighbours plus small noise
(bench/make_vectors.py shows their neighbour similarities match real features'). `--data
repeat` (the old data): the real features repeated with Gaussian noise of norm --noise, which
makes each query's true top-10 a near-random pick among near-identical copies. Queries:
features of Fashion-MNIST *test* images, never indexed. Ground truth: exact top-10 by cosine
on the full float32 vectors.

    python bench/search.py --n 100000                     # + Milvus Lite (auto at <= 200k)
    nice -n 10 python bench/search.py --n 1000000 --no-milvus

Prints a table and writes JSON (--out). Latency is single-query (p50/p99 over --queries);
batch QPS is all queries in one call. RSS is measured in a fresh process that opens the
library and runs the queries (anonymous and file-backed resident memory, as Linux counts them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from lookalike.models import model_info
from lookalike.store import EmbeddedStore, ImageRecord, Upsert
from lookalike.store.ann_index import AnnParams

K = 10


# -- data -------------------------------------------------------------------------------------
def features(split: str, n: int, cache: Path, model: str = "effnet-lite0") -> np.ndarray:
    """Real `model` features of the first `n` Fashion-MNIST images of `split` (cached under
    $LOOKALIKE_CACHE/features by tests/support/vectors.py)."""
    from tests.support.vectors import fashion_mnist_features

    return fashion_mnist_features(n, split="t10k" if split == "test" else split, model=model, progress=True)


_NOISE: dict[int, np.ndarray] = {}


_PARTNERS: dict[int, np.ndarray] = {}


def chunk(base: np.ndarray, start: int, stop: int, noise: float) -> np.ndarray:
    """Rows start..stop of the benchmark set (`--data`), the same rows on every call."""
    if DATA == "mixed":
        from tests.support.vectors import mixed

        from make_vectors import NOISE, neighbours

        if id(base) not in _PARTNERS:
            _PARTNERS.clear()
            _PARTNERS[id(base)] = neighbours(base)
        return mixed(base, stop - start, seed=start, noise=NOISE, partners=_PARTNERS[id(base)])
    return repeated(base, start, stop, noise)


DATA = "mixed"


def repeated(base: np.ndarray, start: int, stop: int, noise: float) -> np.ndarray:
    """Rows start..stop of the synthetic set: base row (i mod len(base)) + Gaussian noise of
    norm ~`noise`, normalised. The noise comes from a fixed pool of 65,537 draws paired with
    rows by a stride, so every row gets its own (base, noise) pair and generation stays cheap."""
    dim = base.shape[1]
    if dim not in _NOISE:
        _NOISE[dim] = np.random.default_rng(1).standard_normal((65_537, dim), dtype=np.float32) / np.float32(np.sqrt(dim))
    pool = _NOISE[dim]
    rows = np.arange(start, stop)
    x = base[rows % len(base)] + pool[(rows * 7_919) % len(pool)] * np.float32(noise)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def merge_topk(best_s: np.ndarray, best_i: np.ndarray, scores: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.broadcast_to(np.arange(offset, offset + scores.shape[1]), scores.shape)
    s = np.concatenate([best_s, scores], axis=1)
    i = np.concatenate([best_i, ids], axis=1)
    top = np.argpartition(-s, K - 1, axis=1)[:, :K]
    s, i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    order = np.argsort(-s, axis=1)
    return np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def rss_mb() -> dict:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def latencies(fn, queries: np.ndarray) -> dict:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    t = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(t, 50)), "p99_ms": float(np.percentile(t, 99))}


# -- the child process: open the library cold, measure open time, RSS, latency ------------------
def measure_library(lib: Path, queries_path: Path, efs: list[int]) -> dict:
    queries = np.load(queries_path)
    t0 = time.perf_counter()
    store = EmbeddedStore(lib)
    store.search(queries[:1], K)  # ready = index loaded and in step with the database
    open_s = time.perf_counter() - t0
    rss_open = rss_mb()
    rows = []
    for ef in efs:
        lat = latencies(lambda q, ef=ef: store.search(q[None], K, ef=ef), queries)
        t0 = time.perf_counter()
        found = store.search(queries, K, ef=ef)
        qps = len(queries) / (time.perf_counter() - t0)
        rows.append({"ef": ef, **lat, "qps": qps, "ids": [[i for i, _ in r] for r in found]})
    return {"open_s": open_s, "rss_open": rss_open, "rss_after": rss_mb(), "ann": store._ann is not None, "rows": rows}


# -- the run ----------------------------------------------------------------------------------
def run(args) -> dict:
    global DATA
    DATA = args.data
    work = Path(args.workdir)
    cache = Path(args.cache)
    base = features("train", args.base, cache)
    queries = features("test", args.queries, cache)
    n, dim = args.n, base.shape[1]
    lib = work / f"lib-{n}"
    qpath = work / "queries.npy"
    work.mkdir(parents=True, exist_ok=True)
    np.save(qpath, queries)
    result: dict = {"n": n, "dim": dim, "base_images": len(base), "queries": len(queries), "noise": args.noise,
                    "data": args.data,
                    "k": K, "cpus": os.cpu_count(), "ann_params": vars(AnnParams.from_env()), "methods": []}

    # Library: SQLite ingest (the store's normal write path), exact ground truth on the side.
    shutil.rmtree(lib, ignore_errors=True)
    store = EmbeddedStore(lib)
    store.set_meta({"model": "effnet-lite0", "dim": str(dim), "model_version": model_info("effnet-lite0").version})
    best_s = np.full((len(queries), K), -np.inf, np.float32)
    best_i = np.zeros((len(queries), K), np.int64)
    step = 20_000
    t_ingest = t_exact = 0.0
    first_id = None
    for s in range(0, n, step):
        x = chunk(base, s, min(n, s + step), args.noise)
        t0 = time.perf_counter()
        ids = store.write([Upsert(ImageRecord(f"/bench/{s + j}.jpg", f"{s + j:064x}", 1, 0.0, 28, 28), v)
                           for j, v in enumerate(x)])
        t_ingest += time.perf_counter() - t0
        first_id = ids[0] if first_id is None else first_id
        t0 = time.perf_counter()
        best_s, best_i = merge_topk(best_s, best_i, queries @ x.T, s)
        t_exact += time.perf_counter() - t0
        print(f"\ringest {min(n, s + step)}/{n}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    assert first_id is not None  # n > 0
    truth = best_i + first_id  # store ids are consecutive from the first
    result["ingest_s"] = t_ingest

    t0 = time.perf_counter()
    store.sync_index(progress=lambda d, t: print(f"\rbuilding index {d}/{t}", end="", file=sys.stderr, flush=True))
    build_s = time.perf_counter() - t0
    print(file=sys.stderr)
    store.close()

    # Exact baselines: the full matrix in memory where it fits, else streamed from disk.
    full_bytes = n * dim * 4
    if full_bytes <= args.exact_mem_gb * 1e9:
        matrix = np.concatenate([chunk(base, s, min(n, s + step), args.noise) for s in range(0, n, step)])
        lat = latencies(lambda q: np.argpartition(-(matrix @ q), K)[:K], queries[:args.exact_queries])
        t0 = time.perf_counter()
        np.argpartition(-(queries @ matrix.T), K, axis=1)
        qps = len(queries) / (time.perf_counter() - t0)
        result["methods"].append({"method": "exact numpy (in RAM)", "build_s": 0.0, "recall": 1.0, **lat, "qps": qps,
                                  "rss_mb": full_bytes / 1e6, "disk_mb": 0.0})
        import faiss

        flat = faiss.IndexFlatIP(dim)
        flat.add(matrix)
        del matrix
        lat = latencies(lambda q: flat.search(q[None], K), queries[:args.exact_queries])
        t0 = time.perf_counter()
        _, fi = flat.search(queries, K)
        qps = len(queries) / (time.perf_counter() - t0)
        result["methods"].append({"method": "exact faiss flat (in RAM)", "build_s": 0.0, "recall": recall(fi.tolist(), best_i),
                                  **lat, "qps": qps, "rss_mb": full_bytes / 1e6, "disk_mb": 0.0})
        del flat
    else:
        # Too big for the RAM budget: single queries against the index's memory-mapped float32
        # copy (page cache), batch = the chunked ground-truth pass above.
        manifest = json.loads((lib / "index" / "manifest.json").read_text())
        mm = np.memmap(lib / "index" / f"vectors-{manifest['build']}.f32", np.float32, "r", shape=(manifest["n_labels"], dim))
        lat = latencies(lambda q: np.argpartition(-(mm @ q), K)[:K], queries[:20])
        del mm
        result["methods"].append({"method": "exact numpy (memory-mapped)", "build_s": 0.0, "recall": 1.0,
                                  **lat, "qps": len(queries) / t_exact, "rss_mb": None, "disk_mb": 0.0,
                                  "note": f"{full_bytes / 1e9:.1f} GB of float32 exceeds the RAM budget; 20 queries"})

    # Lookalike, cold in a fresh process.
    efs = sorted(set(args.ef))
    out = subprocess.run([sys.executable, __file__, "--child", str(lib), str(qpath), ",".join(map(str, efs))],
                         check=True, capture_output=True, text=True).stdout
    child = json.loads(out.strip().splitlines()[-1])
    disk = dir_bytes(lib)
    index_disk = dir_bytes(lib / "index")
    default_ef = AnnParams.from_env().ef
    for row in child["rows"]:
        tag = "default" if row["ef"] == default_ef else "tuned"
        result["methods"].append({"method": f"lookalike ANN ef={row['ef']} ({tag})", "build_s": build_s,
                                  "recall": recall(row["ids"], truth), "p50_ms": row["p50_ms"], "p99_ms": row["p99_ms"],
                                  "qps": row["qps"], "rss_mb": child["rss_after"]["VmRSS"], "disk_mb": disk / 1e6})
    result["lookalike"] = {"open_s": child["open_s"], "rss_open_mb": child["rss_open"], "rss_after_mb": child["rss_after"],
                           "ann_used": child["ann"], "library_disk_mb": disk / 1e6, "index_disk_mb": index_disk / 1e6,
                           "sqlite_disk_mb": (disk - index_disk) / 1e6}

    result["truth_first_id"] = first_id
    if not args.keep:
        shutil.rmtree(lib, ignore_errors=True)
    if args.milvus:
        report(result, args)  # Milvus Lite is slow to build: keep what we have if it is interrupted
        result["methods"].append(milvus(base, queries, n, args.noise, best_i, work))
    return result


def milvus(base: np.ndarray, queries: np.ndarray, n: int, noise: float, truth: np.ndarray, work: Path) -> dict:
    """Milvus Lite, HNSW (M=16, efConstruction=200 as Lookalike's Milvus store uses) at ef=96."""
    from pymilvus import DataType, MilvusClient

    path = work / "milvus.db"
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        path.unlink()
    client = MilvusClient(str(path))
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=base.shape[1])
    params = client.prepare_index_params()
    params.add_index("v", index_type="HNSW", metric_type="IP", params={"M": 16, "efConstruction": 200})
    t0 = time.perf_counter()
    client.create_collection("bench", schema=schema, index_params=params)
    for s in range(0, n, 20_000):
        x = chunk(base, s, min(n, s + 20_000), noise)
        for a in range(0, len(x), 5_000):
            client.insert("bench", [{"id": s + a + j, "v": v.tolist()} for j, v in enumerate(x[a:a + 5_000])])
        print(f"\rmilvus insert {s + len(x)}/{n}", end="", file=sys.stderr, flush=True)
    client.flush("bench")
    client.load_collection("bench")
    build_s = time.perf_counter() - t0
    print(file=sys.stderr)
    sp = {"metric_type": "IP", "params": {"ef": 96}}
    lat = latencies(lambda q: client.search("bench", [q.tolist()], limit=K, search_params=sp), queries[:200])
    t0 = time.perf_counter()
    res = client.search("bench", queries.tolist(), limit=K, search_params=sp)
    qps = len(queries) / (time.perf_counter() - t0)
    found = [[h["id"] for h in r] for r in res]
    client.close()
    return {"method": "Milvus Lite HNSW ef=96", "build_s": build_s, "recall": recall(found, truth), **lat, "qps": qps,
            "rss_mb": None, "disk_mb": dir_bytes(path) / 1e6 if path.is_dir() else path.stat().st_size / 1e6}


def table(result: dict) -> str:
    lines = [f"n={result['n']:,} x {result['dim']}-d, {result['queries']} held-out queries, recall@{K} vs exact, "
             f"{result['cpus']} CPUs",
             f"{'method':<40} {'build s':>8} {'recall':>7} {'p50 ms':>8} {'p99 ms':>8} {'QPS':>9} {'RSS MB':>8} {'disk MB':>8}"]
    exact_p50 = next((m["p50_ms"] for m in result["methods"] if m["method"].startswith("exact faiss")), None)

    def f(v, fmt):
        return format(v, fmt) if v is not None else "-"

    for m in result["methods"]:
        lines.append(f"{m['method']:<40} {f(m['build_s'], '8.1f')} {f(m['recall'], '7.3f')} {f(m['p50_ms'], '8.3f')} "
                     f"{f(m['p99_ms'], '8.3f')} {f(m['qps'], '9.0f')} {f(m['rss_mb'], '8.0f')} {f(m['disk_mb'], '8.0f')}")
        if exact_p50 and m["p50_ms"] and m["method"].startswith("lookalike"):
            lines[-1] += f"  ({exact_p50 / m['p50_ms']:.0f}x faster than faiss flat)"
    lk = result["lookalike"]
    lines.append(f"lookalike: open+first search {lk['open_s']:.2f} s; RSS after open {lk['rss_open_mb']['VmRSS']:.0f} MB "
                 f"(anon {lk['rss_open_mb']['RssAnon']:.0f}), after all queries {lk['rss_after_mb']['VmRSS']:.0f} MB "
                 f"(anon {lk['rss_after_mb']['RssAnon']:.0f}, file-backed {lk['rss_after_mb']['RssFile']:.0f}); "
                 f"disk: SQLite {lk['sqlite_disk_mb']:.0f} MB + index {lk['index_disk_mb']:.0f} MB; "
                 f"SQLite ingest {result['ingest_s']:.0f} s")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure_library(Path(sys.argv[2]), Path(sys.argv[3]), [int(e) for e in sys.argv[4].split(",")])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the library")
    ap.add_argument("--base", type=int, default=20_000, help="Fashion-MNIST train images embedded (repeated with noise to --n)")
    ap.add_argument("--queries", type=int, default=1_000, help="held-out Fashion-MNIST test images")
    ap.add_argument("--data", choices=["mixed", "repeat"], default="mixed", help="how real features are extended to --n")
    ap.add_argument("--noise", type=float, default=0.3, help="--data repeat: norm of the Gaussian noise added to each repeat")
    ap.add_argument("--ef", type=int, nargs="+", default=[32, 64, 96, 160, 256], help="ef values to measure")
    ap.add_argument("--milvus", action=argparse.BooleanOptionalAction, default=None,
                    help="also Milvus Lite (default: when installed and n <= 200k)")
    ap.add_argument("--exact-mem-gb", type=float, default=1.0, help="hold the exact matrix in RAM up to this size")
    ap.add_argument("--exact-queries", type=int, default=200, help="queries for exact single-query latency")
    ap.add_argument("--workdir", default="/tmp/lookalike-bench")
    ap.add_argument("--cache", default="/tmp/lookalike-bench/features", help="cached Fashion-MNIST features")
    ap.add_argument("--keep", action="store_true", help="keep the library after the run")
    ap.add_argument("--out", default=None, help="JSON path [default: bench-search-N.json in --workdir]")
    args = ap.parse_args()
    if args.milvus is None:
        try:
            import milvus_lite  # noqa: F401
            import pymilvus  # noqa: F401

            args.milvus = args.n <= 200_000
        except ImportError:
            args.milvus = False
    report(run(args), args)


def report(result: dict, args) -> None:
    print(table(result), flush=True)
    out = Path(args.out or Path(args.workdir) / f"bench-search-{args.n}.json")
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
