"""What a result's score means: its calibrated `confidence` and the search's verdict.

Image search reads confidence off the model's fitted curve (models/calibrate.py); word
search's score already is a probability (the classifier's), so it is its own confidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..errors import InvalidQuery
from ..models import model_info
from ..models.calibrate import GOOD_MATCH, Calibration, load_calibration
from .params import check_score

if TYPE_CHECKING:
    from .library import Hit

GOOD = "good match"
NONE = "no good match"


def calibration_for(model: str) -> Calibration | None:
    return load_calibration(model, model_info(model).version)


def with_confidence(hits: list[Hit], calibration: Calibration | None) -> list[Hit]:
    for h in hits:
        h.confidence = None if calibration is None else round(float(calibration.confidence(h.score)), 4)
    return hits


def check_min_confidence(value: object, calibration: Calibration | None, model: str, name: str = "min_confidence") -> float | None:
    threshold = check_score(value, name, low=0.0, high=1.0)
    if threshold is not None and calibration is None:
        raise InvalidQuery(f"{name}: model {model!r} has no confidence curve (only the bundled models are calibrated); "
                           "use min_score instead")
    return threshold


def keep_confident(hits: list[Hit], min_confidence: float | None) -> list[Hit]:
    """Hits at or above `min_confidence` (ranks kept: they are still the ranks of the search)."""
    if min_confidence is None:
        return hits
    return [h for h in hits if h.confidence is not None and h.confidence >= min_confidence]


def verdict(hits: Sequence[Hit], good_match: float = GOOD_MATCH) -> str | None:
    """"good match" when the best result's confidence reaches `good_match`, "no good match"
    otherwise (no results included); None when confidence is unknown (uncalibrated model)."""
    if not hits:
        return NONE
    best = max((h.confidence for h in hits if h.confidence is not None), default=None)
    if best is None:
        return None
    return GOOD if best >= good_match else NONE
