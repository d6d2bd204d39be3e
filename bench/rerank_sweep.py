"""Re-ranking sweep on the suite's cached vectors: alpha-QE and DBA, every domain, one table.

Each suite domain is embedded once with the default model (the suite's own `run_domain`) and
cached under --cache; the sweep then only does matrix products, so trying a setting costs
milliseconds. mAP@10 per domain (the suite's metric) against the plain search in the same run.

- alpha-QE (query expansion): the query's top k results are averaged into it, each weighted
  by its cosine to the query to the power alpha, and the library is searched again. `qe`: what
  `search --rerank qe` shows (the best plain match, then the expanded search's best 9 others,
  ordered by their cosine to the query; eval/suite.py `expanded_ranking`); `qe-order`: the
  expanded search's top 10 in its own order.
- DBA (database-side augmentation): every gallery vector is replaced by the same weighted mix
  of itself and its k nearest gallery neighbours. `dba` searches with the query's own
  augmented vector when it is a gallery image (as a library would read it from the store),
  `dba-raw` with the plain query vector (a new image from outside the library).

    python bench/rerank_sweep.py                      # embeds once (~3 min), then sweeps
    python bench/rerank_sweep.py --out bench/results/rerank_sweep.json
    python bench/rerank_sweep.py --seed 1             # another draw of images and queries, to confirm
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lookalike.engine.rerank import QueryExpansion, augment_database, expand_queries
from lookalike.eval.domains import load_domains
from lookalike.eval.metrics import evaluate_rankings, rank_gallery
from lookalike.eval.suite import PAIR_DEPTH, _extractor, expanded_ranking, parse_method, run_domain

ROOT = Path(__file__).resolve().parent.parent
KS = (1, 2, 3, 4, 5, 6, 8, 10)
ALPHAS = (0.0, 1.0, 2.0, 3.0)


def cached_domains(method: str, cache: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """name -> queries, gallery, labels and query_index; embedded on the first run only."""
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("products", "photos", "icons", "digits"):
        path = cache / (f"{method}-{name}.npz" if seed == 0 else f"{method}-{name}-seed{seed}.npz")
        if not path.exists():
            model, options = parse_method(method)
            (domain,) = load_domains([name], seed)
            print(f"embedding {name} ...", flush=True)
            _, _, (queries, gallery) = run_domain(_extractor(model, domain), options, domain)
            np.savez(path, queries=queries, gallery=gallery, gallery_labels=domain.gallery_labels,
                     query_labels=domain.query_labels, query_index=domain.query_index)
        out[name] = dict(np.load(path))
    return out


def map10(d: dict[str, np.ndarray], ranked: np.ndarray) -> float:
    exclude = d["query_index"]
    return float(evaluate_rankings(ranked, d["query_labels"], d["gallery_labels"], (1,), (PAIR_DEPTH,), exclude)
                 .map_at[PAIR_DEPTH])


def plain(d: dict[str, np.ndarray], queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    return rank_gallery(queries, gallery, PAIR_DEPTH, d["query_index"])


def expanded_order(d: dict[str, np.ndarray], queries: np.ndarray, gallery: np.ndarray, k: int, alpha: float) -> np.ndarray:
    """The expanded query's own top 10, in its order (not what search shows)."""
    first = rank_gallery(queries, gallery, k, d["query_index"])
    expanded = expand_queries(queries, gallery[first], np.take_along_axis(queries @ gallery.T, first, axis=1), alpha)
    return plain(d, expanded, gallery)


def augmented(d: dict[str, np.ndarray], k: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """DBA gallery, and the queries as a library reads them (its own images: augmented)."""
    g = augment_database(d["gallery"], k, alpha)
    q = d["queries"].copy()
    inside = d["query_index"] >= 0
    q[inside] = g[d["query_index"][inside]]
    return q, g


def sweep(domains: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for name, d in domains.items():
        q, g, exclude = d["queries"], d["gallery"], d["query_index"]
        rows.setdefault("none", {})[name] = map10(d, plain(d, q, g))
        for k in KS:
            for a in ALPHAS:
                rows.setdefault(f"qe k={k} a={a:g}", {})[name] = map10(
                    d, expanded_ranking(q, g, PAIR_DEPTH, exclude, QueryExpansion(k, a)))
                rows.setdefault(f"qe-order k={k} a={a:g}", {})[name] = map10(d, expanded_order(d, q, g, k, a))
                dq, dg = augmented(d, k, a)
                rows.setdefault(f"dba k={k} a={a:g}", {})[name] = map10(d, plain(d, dq, dg))
                rows.setdefault(f"dba-raw k={k} a={a:g}", {})[name] = map10(d, plain(d, q, dg))
        for kd, ad, kq, aq in ((1, 3.0, 2, 3.0), (2, 3.0, 2, 3.0), (3, 3.0, 3, 3.0), (5, 3.0, 5, 3.0)):
            dq, dg = augmented(d, kd, ad)
            rows.setdefault(f"dba k={kd} a={ad:g} + qe k={kq} a={aq:g}", {})[name] = map10(
                d, expanded_ranking(dq, dg, PAIR_DEPTH, exclude, QueryExpansion(kq, aq)))
    for r in rows.values():
        r["mean"] = float(np.mean([r[n] for n in domains]))
        r["worst_loss"] = float(min(r[n] - rows["none"][n] for n in domains)) if "none" in rows else 0.0
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="effnet-lite0")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/rerank-cache"))
    ap.add_argument("--seed", type=int, default=0, help="the suite's seed (which images and queries); 1: a second draw to confirm on")
    ap.add_argument("--top", type=int, default=25, help="rows printed, best mean first (plus the baseline)")
    ap.add_argument("--out", type=Path, default=None, help="write every row as JSON")
    args = ap.parse_args()
    domains = cached_domains(args.method, args.cache, args.seed)
    t0 = time.process_time()
    rows = sweep(domains)
    rows["none"]["worst_loss"] = 0.0
    names = list(domains)
    base = rows["none"]
    print(f"{len(rows)} settings swept in {time.process_time() - t0:.1f} s CPU")
    print("| setting | " + " | ".join(names) + " | mean | worst loss |")
    print("|---|" + "---:|" * (len(names) + 2))
    order = ["none"] + sorted((r for r in rows if r != "none"), key=lambda r: -rows[r]["mean"])[:args.top]
    for r in order:
        cells = [f"{rows[r][n]:.3f}" + ("" if r == "none" else f" ({100 * (rows[r][n] - base[n]):+.1f})") for n in names]
        print(f"| {r} | " + " | ".join(cells) + f" | {rows[r]['mean']:.3f} ({100 * (rows[r]['mean'] - base['mean']):+.1f})"
              f" | {100 * rows[r]['worst_loss']:+.1f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"method": args.method, "seed": args.seed, "rows": {r: {k: round(v, 4) for k, v in rows[r].items()}
                                                                          for r in rows}}, indent=1) + "\n")
        print("wrote", args.out)


if __name__ == "__main__":
    main()
