"""Fitting confidence curves (models/calibrate.py) on the suite's pairs.

Pairs: each suite query's top results, labelled relevant or not, plus "unrelated" pairs
(queries of one domain against the gallery of another: never the same thing), so that a
query unlike anything in the library learns low confidence. Every domain weighs the same.
Isotonic regression (monotone in the score) gives the curve; held-out queries (odd ones,
the curve fitted on the even ones) give the reliability numbers and diagram."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..extras import require
from ..models import model_info
from ..models.calibrate import GOOD_MATCH, Calibration
from .suite import PAIR_DEPTH, SuiteResult

UNRELATED = "unrelated"
GRID_STEP = 0.01
BINS = 10


def suite_pairs(result: SuiteResult, method: str, queries: slice = slice(None)) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """domain -> (scores, relevant) flattened, for the queries `queries` selects (e.g. every
    other one), with the cross-domain "unrelated" pairs as one more domain."""
    out = {}
    for name, (scores, rel) in result.pairs[method].items():
        out[name] = (scores[queries].ravel(), rel[queries].ravel())
    unrelated = []
    for domain_a, (qa, _) in result.vectors[method].items():
        for domain_b, (_, gb) in result.vectors[method].items():
            if domain_a != domain_b:
                sims = qa[queries] @ gb.T
                unrelated.append(-np.sort(-sims, axis=1)[:, :PAIR_DEPTH].ravel())
    if unrelated:
        s = np.concatenate(unrelated)
        out[UNRELATED] = (s, np.zeros(len(s), bool))
    return out


def fit_curve(pairs: dict[str, tuple[np.ndarray, np.ndarray]], model: str, version: str) -> Calibration:
    Isotonic = require("sklearn.isotonic", feature="fitting confidence", extra="eval").IsotonicRegression
    scores = np.concatenate([s for s, _ in pairs.values()])
    labels = np.concatenate([r for _, r in pairs.values()]).astype(float)
    weights = np.concatenate([np.full(len(s), 1.0 / max(len(s), 1)) for s, _ in pairs.values()])
    iso = Isotonic(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels, sample_weight=weights)
    lo, hi = np.floor(scores.min() / GRID_STEP) * GRID_STEP, np.ceil(scores.max() / GRID_STEP) * GRID_STEP
    grid = np.round(np.arange(lo, hi + GRID_STEP / 2, GRID_STEP), 4)
    conf = np.round(iso.predict(grid), 4)
    keep = [0] + [i for i in range(1, len(grid) - 1) if not (conf[i - 1] == conf[i] == conf[i + 1])] + [len(grid) - 1]
    return Calibration(model, version, tuple(round(float(grid[i]), 4) for i in keep), tuple(round(float(conf[i]), 4) for i in keep),
                       GOOD_MATCH)


@dataclass
class Reliability:
    """Held-out check of a curve: per confidence bin, mean confidence vs fraction relevant."""

    bin_confidence: list[float]
    bin_accuracy: list[float]
    bin_count: list[int]
    ece: float  # expected calibration error (domain-weighted)
    brier: float
    # of held-out queries: with a relevant top result, how many got "good match"; unrelated, how many "no good match"
    good_when_right: float
    none_when_unrelated: float

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def reliability(curve: Calibration, pairs: dict[str, tuple[np.ndarray, np.ndarray]], result: SuiteResult, method: str,
                queries: slice) -> Reliability:
    conf = np.concatenate([np.asarray(curve.confidence(s)) for s, _ in pairs.values()])
    labels = np.concatenate([r for _, r in pairs.values()]).astype(float)
    weights = np.concatenate([np.full(len(s), 1.0 / max(len(s), 1)) for s, _ in pairs.values()])
    weights = weights / weights.sum()
    edges = np.linspace(0, 1, BINS + 1)
    which = np.clip(np.digitize(conf, edges) - 1, 0, BINS - 1)
    bc: list[float] = []
    ba: list[float] = []
    bn: list[int] = []
    ece = 0.0
    for b in range(BINS):
        m = which == b
        if not m.any():
            bc.append(float("nan"))
            ba.append(float("nan"))
            bn.append(0)
            continue
        w = weights[m]
        c, a = float(np.average(conf[m], weights=w)), float(np.average(labels[m], weights=w))
        bc.append(round(c, 4))
        ba.append(round(a, 4))
        bn.append(int(m.sum()))
        ece += w.sum() * abs(c - a)
    brier = float(np.sum(weights * (conf - labels) ** 2))
    # Verdicts on the best result of each held-out query.
    right, good = 0, 0
    for scores, rel in result.pairs[method].values():
        top, top_rel = scores[queries][:, 0], rel[queries][:, 0]
        right += int(top_rel.sum())
        good += int((np.asarray(curve.confidence(top))[top_rel] >= curve.good_match).sum())
    best_unrelated = []
    for domain_a, (qa, _) in result.vectors[method].items():
        for domain_b, (_, gb) in result.vectors[method].items():
            if domain_a != domain_b:
                best_unrelated.append((qa[queries] @ gb.T).max(axis=1))
    bu = np.concatenate(best_unrelated) if best_unrelated else np.zeros(0)
    none = float((np.asarray(curve.confidence(bu)) < curve.good_match).mean()) if len(bu) else float("nan")
    return Reliability(bc, ba, bn, round(float(ece), 4), round(brier, 4), round(good / max(right, 1), 4), round(none, 4))


def calibrate(result: SuiteResult, method: str) -> tuple[Calibration, Reliability]:
    """The curve to ship (fitted on every query) and its held-out check (fitted on even
    queries, measured on odd ones)."""
    version = model_info(method.split("+")[0]).version
    half = fit_curve(suite_pairs(result, method, slice(0, None, 2)), method, version)
    check = reliability(half, suite_pairs(result, method, slice(1, None, 2)), result, method, slice(1, None, 2))
    return fit_curve(suite_pairs(result, method), method, version), check


def reliability_diagram(checks: dict[str, Reliability], path: Path) -> Path:
    from .plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=90)
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label="perfect")
    for name, r in checks.items():
        xs = [c for c, n in zip(r.bin_confidence, r.bin_count) if n]
        ys = [a for a, n in zip(r.bin_accuracy, r.bin_count) if n]
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {r.ece:.3f})")
    ax.axvline(GOOD_MATCH, color="#d23c3c", linewidth=1, alpha=0.6)
    ax.text(GOOD_MATCH + 0.01, 0.03, "good match", color="#d23c3c", fontsize=8)
    ax.set_xlabel("confidence (held-out queries)")
    ax.set_ylabel("fraction that show the same thing")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def without_domain(result: SuiteResult, name: str) -> SuiteResult:
    """The same run as if domain `name` had not been measured (for calibration only: its
    pairs and vectors are left out, so is it from the unrelated pairs)."""
    return replace(result, pairs={m: {d: v for d, v in p.items() if d != name} for m, p in result.pairs.items()},
                   vectors={m: {d: v for d, v in p.items() if d != name} for m, p in result.vectors.items()})


def curve_shift(a: Calibration, b: Calibration) -> tuple[float, float]:
    """(largest |confidence b - confidence a| over scores 0..1, the score where it is)."""
    grid = np.linspace(0.0, 1.0, 101)
    diff = np.asarray(b.confidence(grid)) - np.asarray(a.confidence(grid))
    i = int(np.argmax(np.abs(diff)))
    return float(diff[i]), float(grid[i])
