"""The development suite for every bundled model, and the confidence curves fitted on it.

    python bench/suite.py                       # table + reliability numbers
    python bench/suite.py --write-curves        # also ship the curves (models/calibration/*.json),
                                                # docs/eval/reliability.png, bench/results/suite.json
    python bench/suite.py --methods effnet-lite0 --calibrate effnet-lite0 --compare-without brain --out /tmp/suite.json
                                                # how far the brain domain moves the curve

Each curve is keyed by the model's build version: re-run after a change to a model's graph."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from lookalike.eval.calibration import calibrate, curve_shift, reliability_diagram, without_domain
from lookalike.eval.suite import change_intervals, intervals_table, run_suite, suite_table
from lookalike.models.calibrate import CURVES_DIR, curve_path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = "effnet-lite0-avg,effnet-lite0,effnet-lite0-ml,effnet-lite2"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=DEFAULT, help=f"comma-separated [default: {DEFAULT}]")
    ap.add_argument("--domains", default=None, help="comma-separated subset of products,photos,icons,digits,brain")
    ap.add_argument("--baseline", default="effnet-lite0-avg", help="method the table compares against")
    ap.add_argument("--calibrate", default="effnet-lite0-avg,effnet-lite0,effnet-lite0-ml,effnet-lite2",
                    help="methods to fit confidence curves for (plain model names only)")
    ap.add_argument("--write-curves", action="store_true")
    ap.add_argument("--compare-without", metavar="DOMAIN", default=None,
                    help="also fit each curve without this domain and print how far the curve moves")
    ap.add_argument("--no-diagram", action="store_true", help="with --write-curves: leave docs/eval/reliability.png as it is")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "suite.json")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]
    t0 = time.perf_counter()
    result = run_suite(methods, args.domains.split(",") if args.domains else None,
                       progress=lambda msg: print(f"[{time.perf_counter() - t0:5.0f} s] {msg}", flush=True))
    print(suite_table(result, args.baseline if args.baseline in methods else None))
    report = result.to_dict()
    if args.baseline in methods and len(methods) > 1:
        print(intervals_table(result, args.baseline))
        report["change_vs_baseline"] = {"baseline": args.baseline, "methods": change_intervals(result, args.baseline)}
    checks = {}
    for m in [m for m in args.calibrate.split(",") if m in methods]:
        curve, check = calibrate(result, m)
        checks[m] = check
        report["methods"][m]["calibration"] = check.to_dict()
        print(f"{m}: held-out ECE {check.ece:.3f}, Brier {check.brier:.3f}; good match when the top result is right "
              f"{check.good_when_right:.1%}; no good match for unrelated queries {check.none_when_unrelated:.1%}")
        if args.compare_without:
            other, other_check = calibrate(without_domain(result, args.compare_without), m)
            shift, at = curve_shift(other, curve)
            print(f"  without {args.compare_without}: held-out ECE {other_check.ece:.3f}, Brier {other_check.brier:.3f}, "
                  f"good match when right {other_check.good_when_right:.1%}; adding it moves the curve by {shift:+.3f} "
                  f"at most (at score {at:.2f})")
        if args.write_curves:
            CURVES_DIR.mkdir(parents=True, exist_ok=True)
            curve_path(m).write_text(json.dumps(curve.to_dict(), indent=1) + "\n", encoding="utf-8")
    if args.write_curves and checks and not args.no_diagram:
        print("wrote", reliability_diagram(checks, ROOT / "docs" / "eval" / "reliability.png"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
