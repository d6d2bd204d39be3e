"""Cost of `where` filters on the embedded store: the SQL pre-filter alone (listing), and
filtered top-10 searches, exact (below the ANN threshold) and through the ANN index, for
filters that match half of the images, and about 2%. "cold": the filter's first use after
a change (the SQL pre-filter runs); "warm": the same filter again (its ids are cached). Synthetic clustered vectors with
typed fields; single-query latency, p50 over --queries.

    python bench/where_filter.py --n 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.filters import parse
from lookalike.models import model_info
from lookalike.store import EmbeddedStore, ImageRecord, SearchFilter, Upsert
from lookalike.store.ann_index import AnnParams

FILTERS = {"none": None, "half": "even = true", "cluster+format": 'cluster = 7 and format = "jpeg"',
           "cluster+shard+name": 'cluster = 7 and shard = 7 and name like "img_1%"'}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=model_info("effnet-lite0").dim)
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, args.dim)).astype(np.float32)
    labels = np.arange(args.n) % 30
    vecs = centres[labels] + 0.5 * rng.normal(size=(args.n, args.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[rng.choice(args.n, args.queries, replace=False)] + 0.05
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp), ann_threshold=10**9, ann_params=AnnParams(pca_dim=128))
        store.set_meta({"model": "effnet-lite0", "dim": str(args.dim), "model_version": model_info("effnet-lite0").version})
        t0 = time.perf_counter()
        for s in range(0, args.n, 2000):
            store.write([Upsert(ImageRecord(f"/b/img_{i}.jpg", f"{i:064x}", 1, 0.0, 1, 1, fields={
                "cluster": int(labels[i]), "shard": i % 10, "even": i % 2 == 0, "format": ["jpeg", "png"][i % 31 % 2],
                "name": f"img_{i}.jpg"}), vecs[i]) for i in range(s, min(s + 2000, args.n))])
        print(f"wrote {args.n} records with fields in {time.perf_counter() - t0:.1f} s")
        types = store.field_types()
        print(f"{'filter':>18} {'matches':>8} {'list ms':>8} {'exact cold':>11} {'exact warm p50':>15} "
              f"{'ANN cold':>9} {'ANN warm p50':>13} {'ANN hits':>9}  (ms)")
        ann = EmbeddedStore(Path(tmp), ann_threshold=1000, ann_params=AnnParams(pca_dim=128))
        ann.sync_index()
        for label, text in FILTERS.items():
            where = SearchFilter(expr=parse(text, types)) if text else None
            t0 = time.perf_counter()
            matching = sum(1 for _ in store.iter_records(where=where))
            list_ms = (time.perf_counter() - t0) * 1000
            row = []
            for s in (store, ann):
                s.write([Upsert(s.get([1])[1])])  # a change: the filter cache starts empty
                s.search(queries[:1], 10, None)  # matrix / index reloaded after the change
                t0 = time.perf_counter()
                s.search(queries[:1], 10, where)
                cold = (time.perf_counter() - t0) * 1000
                times, hits = [], []
                for q in queries:
                    t0 = time.perf_counter()
                    hits.append(len(s.search(q[None], 10, where)[0]))
                    times.append((time.perf_counter() - t0) * 1000)
                row.append((cold, float(np.median(times)), min(hits)))
            (ec, ew, _), (ac, aw, ah) = row
            print(f"{label:>18} {matching:>8} {list_ms:>8.1f} {ec:>11.1f} {ew:>15.2f} {ac:>9.1f} {aw:>13.2f} {ah:>9}")
        ann.close()
        store.close()


if __name__ == "__main__":
    main()
