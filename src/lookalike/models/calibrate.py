"""Confidence: what a cosine score means, per model build.

`confidence` is the probability that a result shows the same thing as the query (same
product class, same object category, same photo), read off a monotone curve fitted on the
development suite's pairs (`python bench/calibrate.py`, eval/calibration.py). The curve is
a small JSON file per model in models/calibration/, keyed by the model's build version, so a
rebuilt graph never reuses an old curve. Models without a curve report no confidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

CURVES_DIR = Path(__file__).with_name("calibration")
GOOD_MATCH = 0.5  # below this best confidence a search says "no good match"


@dataclass(frozen=True)
class Calibration:
    model: str
    version: str
    scores: tuple[float, ...]  # increasing cosine scores...
    confidences: tuple[float, ...]  # ...and the non-decreasing confidence at each
    good_match: float = GOOD_MATCH

    def confidence(self, score: float | np.ndarray) -> float | np.ndarray:
        """Piecewise-linear between the fitted points, flat beyond them; in [0, 1]."""
        out = np.clip(np.interp(score, self.scores, self.confidences), 0.0, 1.0)
        return float(out) if np.ndim(out) == 0 else out

    def to_dict(self) -> dict:
        return {"model": self.model, "version": self.version, "good_match": self.good_match,
                "scores": list(self.scores), "confidences": list(self.confidences)}


def curve_path(model: str, directory: Path = CURVES_DIR) -> Path:
    return directory / f"{model}.json"


@lru_cache(maxsize=32)
def load_calibration(model: str, version: str, directory: Path = CURVES_DIR) -> Calibration | None:
    """The curve fitted for this model build, or None (unknown model, or fitted on another build)."""
    path = curve_path(model, directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("model") != model or data.get("version") != version:
        return None
    scores, confs = data.get("scores") or [], data.get("confidences") or []
    if len(scores) < 2 or len(scores) != len(confs):
        return None
    return Calibration(model, version, tuple(map(float, scores)), tuple(map(float, confs)),
                       float(data.get("good_match", GOOD_MATCH)))
