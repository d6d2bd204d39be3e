"""User input, parsed and checked once: the CLI, the REST API and the web page turn strings or
JSON into these calls and show the `InvalidQuery` / `NotFound` they raise as they are.
This module imports nothing heavy, so shells can validate before loading a model."""

from __future__ import annotations

import datetime
import math
import os
from dataclasses import dataclass
from typing import Sequence

from ..errors import InvalidQuery, NotFound

DATE_HELP = "YYYY-MM-DD or YYYY-MM-DDTHH:MM (local time)"
MAX_K = 1000
MAX_EF = 4096
FIT_SAMPLE = 500  # images a trainable extractor (e.g. a codebook) learns from
TIERS = ("exact", "near", "similar")  # duplicate tiers, strongest first

CropBox = tuple[float, float, float, float]  # (left, top, right, bottom) as fractions, 0..1


@dataclass
class DuplicateThresholds:
    near_cosine: float = 0.80
    similar_cosine: float = 0.85
    neighbours: int = 20  # nearest images examined per image
    near_min_coverage: float = 0.75  # each image covers >= 75% of the other: crops up to ~13% a side
    near_max_rotation: float = 3.0  # degrees
    near_min_inliers: int = 20  # keypoint matches agreeing on the transform

    def validate(self) -> None:
        if not (-1.0 <= self.similar_cosine <= 1.0 and -1.0 <= self.near_cosine <= 1.0):
            raise InvalidQuery("cosine thresholds must be between -1 and 1")
        if not 0.0 <= self.near_min_coverage <= 1.0:
            raise InvalidQuery("the near coverage threshold must be between 0 and 1")
        if self.neighbours < 1:
            raise InvalidQuery("neighbours must be at least 1")


def parse_date(text: str | None, name: str, end_of_day: bool = False) -> float | None:
    """A local date or date-time -> Unix seconds (None when empty). A date alone with
    `end_of_day` covers that whole day. Dates the platform cannot turn into seconds
    (9999-12-31 at the end of day, 0001-01-01 in some time zones) are an `InvalidQuery`."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if len(value) == 10:
            start = datetime.datetime.combine(datetime.date.fromisoformat(value), datetime.time())
            moment = start + datetime.timedelta(days=1, microseconds=-1) if end_of_day else start
        else:
            moment = datetime.datetime.fromisoformat(value)
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31 plus a day
        raise InvalidQuery(f"{name} must be a date, {DATE_HELP}: {text!r} is not a date") from None
    try:
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):  # 0001-01-01 east of UTC, 9999-12-31 west of it, ...
        raise InvalidQuery(f"{name} must be a date, {DATE_HELP}: {text!r} is outside the range this system's clock can represent") from None


def folder_prefix(under: str | os.PathLike | None, name: str = "under") -> str | None:
    """An absolute folder path ending in the separator, for path-prefix filters."""
    if under is None or os.fspath(under) == "":
        return None
    text = os.fspath(under)
    if "\x00" in text:
        raise InvalidQuery(f"{name} must be a folder path")
    return os.path.abspath(os.path.expanduser(text)).rstrip(os.sep) + os.sep


def check_k(k: object, name: str = "k") -> int:
    """The number of results: an integer from 1 to `MAX_K`."""
    value = _integer(k, name)
    if not 1 <= value <= MAX_K:
        raise InvalidQuery(f"{name} must be between 1 and {MAX_K}, got {value}")
    return value


def check_ef(ef: object, name: str = "ef") -> int | None:
    """ANN candidates per query: None (the store's default) or 1..`MAX_EF`."""
    if ef is None or ef == "":
        return None
    value = _integer(ef, name)
    if not 1 <= value <= MAX_EF:
        raise InvalidQuery(f"{name} must be between 1 and {MAX_EF}, got {value}")
    return value


def check_score(value: object, name: str = "min_score", low: float | None = -1.0, high: float | None = 1.0) -> float | None:
    """A score threshold: None, or a finite number in [low, high] (NaN and infinities refused;
    a bound of None means any finite number)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # any object: what float() refuses is refused below
    except (TypeError, ValueError):
        raise InvalidQuery(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidQuery(f"{name} must be a finite number, got {value!r}")
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidQuery(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return number


def parse_crop(crop: object, name: str = "crop") -> CropBox | None:
    """"x0,y0,x1,y1" or four numbers, fractions of the image: 0 <= x0 < x1 <= 1, same for y.
    Any other value (a form field sent as a file, a number) is refused, not a crash."""
    if crop is None or crop == "":
        return None
    if not isinstance(crop, (str, Sequence)):
        raise InvalidQuery(f"{name} must be x0,y0,x1,y1 (four numbers from 0 to 1), got {type(crop).__name__}")
    if len(crop) == 0:
        return None
    parts = crop.split(",") if isinstance(crop, str) else list(crop)
    try:
        box = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise InvalidQuery(f"{name} must be x0,y0,x1,y1 (four numbers from 0 to 1), got {crop!r}")
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
        raise InvalidQuery(f"{name} box {x0:g},{y0:g},{x1:g},{y1:g} must satisfy 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
    return box


def check_tiers(tiers: Sequence[str] | None, name: str = "tier") -> list[str]:
    """Duplicate tiers to report; empty or None means all of them."""
    chosen = list(tiers) if tiers else list(TIERS)
    bad = [t for t in chosen if t not in TIERS]
    if bad:
        raise InvalidQuery(f"{name} {bad[0]!r} is not one of {', '.join(TIERS)}")
    return chosen


def check_label_text(text: str | None) -> str | None:
    """Search-by-word text: None, or text naming at least one ImageNet class (directly or
    through WordNet's hierarchy); otherwise the one error, with the nearest searchable words."""
    if text is None:
        return None
    if not text.strip():
        raise InvalidQuery("the search word is empty: give a noun such as 'dog', 'bird' or 'espresso'")
    from .tags import unknown_words  # loads the vocabulary only when a word is asked for

    problem = unknown_words(text)
    if problem is not None:
        raise problem
    return text


def no_image(id_: int) -> NotFound:
    """The one "unknown id" error, raised wherever an id is looked up."""
    return NotFound(f"no image with id {id_} in this library")


def fit_sample(count: int, size: int = FIT_SAMPLE, seed: int = 0) -> list[int]:
    """Indices (sorted) of the seeded sample of `count` items a trainable extractor learns from:
    the same rule for a library and for the evaluation harness, so their codebooks agree."""
    import numpy as np

    return sorted(int(i) for i in np.random.default_rng(seed).permutation(count)[:size])


def parse_flag(value: object, name: str) -> bool | None:
    """A yes/no option from JSON, a form field or a query parameter; None when not given."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise InvalidQuery(f"{name} must be true or false, got {str(value)[:40]!r}")


def _integer(value: object, name: str) -> int:
    try:
        number = int(value)  # type: ignore[call-overload]  # any object: what int() refuses is refused below
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InvalidQuery(f"{name} must be an integer, got {value!r}") from None
    return number


def make_filter(under: str | os.PathLike | None = None, since: str | None = None, until: str | None = None,
                names: tuple[str, str, str] = ("under", "since", "until")):
    """The store filter for a folder and a date range, as the CLI's --under/--since/--until
    and the API's under/since/until give them; None when nothing is set. A date alone as
    `until` covers that whole day. Returns a `SearchFilter` or None."""
    from ..filters import And, Compare  # imported on use: validation stays cheap
    from ..store.base import SearchFilter

    # The range applies to the `date` field: the capture time when the file records one, else
    # the file's modification time (engine/media_fields.py, docs/photos.md).
    bounds = [Compare("date", op, bound) for op, bound in ((">=", date_bound(since, names[1])),
                                                            ("<=", date_bound(until, names[2], end_of_day=True)))
              if bound is not None]
    expr = None if not bounds else bounds[0] if len(bounds) == 1 else And(tuple(bounds))
    where = SearchFilter(path_prefix=folder_prefix(under, names[0]), expr=expr)
    return None if where.is_empty() else where


def date_bound(text: str | None, name: str, end_of_day: bool = False) -> str | None:
    """A --since/--until value as the local ISO 8601 text `date` fields compare with
    ("2024-05-01" -> "2024-05-01T00:00:00", or "...T23:59:59.999999" as an end of day);
    checked like `parse_date`. A time with a UTC offset is turned into this machine's time."""
    if parse_date(text, name, end_of_day) is None:
        return None
    value = (text or "").strip()
    if len(value) == 10:
        return value + ("T23:59:59.999999" if end_of_day else "T00:00:00")
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")
