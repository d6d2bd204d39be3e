"""Recall@10 against single-query p50 latency from bench/search.py results (one curve per
JSON file: Lookalike's ANN index over its `ef` values, other methods as points) or from
bench/ann_tune.py results (one curve per index config or library, over `ef`).

    python bench/plot_recall.py /tmp/lookalike-bench/bench-search-100000.json --out docs/recall-latency.png
    python bench/plot_recall.py /tmp/lookalike-bench/ann-tune-100000.json --out docs/recall-latency-100k.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", help="bench/search.py JSON files")
    ap.add_argument("--out", default="docs/recall-latency.png")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # type: ignore[attr-defined]  # a ListedColormap
    for path in args.results:
        result = json.loads(Path(path).read_text())
        if "rows" in result:  # bench/ann_tune.py
            curves: dict[str, list[dict]] = {}
            for r in result["rows"]:
                pool = r.get("rerank")
                name = r["method"] + (f", re-rank {pool}" if pool is not None and pool != r["ef"] else "")
                curves.setdefault(f"{name} ({result['n']:,}, {r['mem_mb']:.0f} MB)", []).append(r)
            for name, rows in curves.items():
                rows.sort(key=lambda r: r["ef"])
                ax.plot([r["p50_ms"] for r in rows], [r["recall"] for r in rows], "o-" if "lookalike" in name else "s--",
                        label=name, ms=4)
            continue
        label = f"{result['n']:,} x {result['dim']}-d ({result.get('data', 'repeat')} data)"
        curve = [m for m in result["methods"] if m["method"].startswith("lookalike")]
        ax.plot([m["p50_ms"] for m in curve], [m["recall"] for m in curve], "o-", label=f"Lookalike ANN, {label}")
        for m, ef in zip(curve, (m["method"].split("ef=")[1].split()[0] for m in curve)):
            ax.annotate(f"ef={ef}", (m["p50_ms"], m["recall"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
        for m in result["methods"]:
            if not m["method"].startswith(("lookalike", "exact numpy")) and m.get("p50_ms"):
                ax.plot([m["p50_ms"]], [m["recall"]], "s", label=f"{m['method']}, {result['n']:,}")
    ax.axhline(0.95, color="grey", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("single-query p50 latency (ms, log scale)")
    ax.set_ylabel("recall@10 vs exact")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
