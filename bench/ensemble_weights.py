"""How much each network should count in the default pair (`effnet-lite0-lite1`): Lite0's share
w of the cosine (cos = w * cos_lite0 + (1 - w) * cos_lite1), with and without alpha-QE, on every
suite domain and on several seeded draws of the queries, each change against plain Lite0 with
its 95 % paired bootstrap interval.

Each network embeds each domain once (`run_suite` with the two single models); a weighted pair
is made from those vectors (sqrt(w) * v0 joined with sqrt(1 - w) * v1), so w = 0.5 is exactly
the shipped model's vectors.

    python bench/ensemble_weights.py --seeds 0 1     # about 2.5 minutes on a quiet 2-core machine
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lookalike.eval.suite import SuiteResult, change_intervals, intervals_table, run_suite, score_vectors, suite_table

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "effnet-lite0"


def weighted(result: SuiteResult, shares: list[float]) -> SuiteResult:
    """The suite's cells for plain Lite0 and each weighted pair, plain and with alpha-QE."""
    methods = [BASELINE] + [f"w{w:g}{qe}" for w in shares for qe in ("", "+qe")]
    out = SuiteResult(result.domains, methods, seconds=result.seconds)
    out.cells[BASELINE] = result.cells[BASELINE]
    for w in shares:
        a, b = np.float32(np.sqrt(w)), np.float32(np.sqrt(1 - w))
        for qe in ("", "+qe"):
            cells = out.cells[f"w{w:g}{qe}"] = {}
            for d in result.domains:
                (q0, g0), (q1, g1) = result.vectors["effnet-lite0"][d.name], result.vectors["effnet-lite1"][d.name]
                queries, gallery = np.hstack([q0 * a, q1 * b]), np.hstack([g0 * a, g1 * b])
                cells[d.name] = score_vectors(d, queries, gallery, ["qe"] if qe else [], [])[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeded draws of each domain's queries")
    ap.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.6, 0.7], help="Lite0's share of the cosine")
    ap.add_argument("--domains", default=None, help="comma-separated subset of the suite's domains")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ensemble_weights.json")
    args = ap.parse_args()
    t0 = time.perf_counter()
    report: dict = {"shares": args.shares, "seeds": {}}
    for seed in args.seeds:
        def progress(msg: str, seed: int = seed) -> None:
            print(f"[{time.perf_counter() - t0:5.0f} s] seed {seed}: {msg}", flush=True)

        result = run_suite(["effnet-lite0", "effnet-lite1"], args.domains.split(",") if args.domains else None, seed, progress)
        table = weighted(result, args.shares)
        print(f"\nseed {seed}\n" + suite_table(table, BASELINE) + "\n" + intervals_table(table, BASELINE) + "\n")
        changes = {"baseline": BASELINE, "methods": change_intervals(table, BASELINE)}
        report["seeds"][str(seed)] = {"suite": table.to_dict(), "change_vs_baseline": changes}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
