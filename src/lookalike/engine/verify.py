"""Geometric verification of the top results for "find this photo": ORB keypoints of the
query are matched against each of the best `depth` candidates and a similarity transform is
fitted with RANSAC (engine/keypoints.py, the duplicates feature's code). Candidates that share
many consistent keypoints with the query show the same picture — a crop, a rotated crop,
a half-covered or re-lit copy — even where the whole-image features disagree, so they move
to the top, ordered by inlier count; the others keep their cosine order below them.

`score` stays the cosine (confidence is calibrated on it); each verified hit carries its
`inliers`. Images under keypoints.MIN_SIDE pixels a side have no keypoints and keep their
place, which is why verification leaves tiny images (icons, digits) untouched."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..errors import InvalidQuery, MissingExtra
from ..extras import require
from .keypoints import SIDE, Keypoints, keypoints, load_cv2, match

DEPTH = 20  # candidates verified per query (measured: docs/evaluation.md#geometric-verification)
MAX_DEPTH = 200
MIN_INLIERS = 15  # consistent matches that make a candidate "the same picture" (measured, same place)
WORKERS = 4  # threads reading and matching candidates
# Candidates are decoded at the smallest JPEG scale whose short side still reaches the
# comparison size (keypoints.SIDE, which the long side is then shrunk to): no more pixels.
DRAFT_SIDE = SIDE


def check_depth(depth: int | None, name: str = "verify_depth") -> int:
    if depth is None:
        return DEPTH
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidQuery(f"{name} must be an integer from 1 to {MAX_DEPTH}, got {depth!r}")
    return int(depth)


def _require_opencv() -> None:
    require("cv2", feature="geometric verification (search --verify)", extra="duplicates")


def unavailable() -> str | None:
    """Why verification cannot run here (OpenCV missing: the MissingExtra message), or None.
    Lets a shell offer it only where it works."""
    try:
        _require_opencv()
    except MissingExtra as e:
        return str(e)
    return None


def check_verify(verify: bool, depth: int | None, query: object, negative: Sequence[object]) -> int:
    """How many candidates to verify (0: no verification), checked before any work: it needs
    one query image and OpenCV."""
    if not isinstance(verify, bool):
        raise InvalidQuery(f"verify must be true or false, got {verify!r}")
    if not verify:
        if depth is not None:
            check_depth(depth)
        return 0
    if isinstance(query, (list, tuple)) and len(query) != 1 or negative:
        raise InvalidQuery("verify takes one query image (not several, nor negatives)")
    _require_opencv()
    return check_depth(depth)


def inlier_counts(query: Image.Image | Keypoints, candidates: Sequence[Image.Image | Keypoints | None]) -> list[int]:
    """Inliers of the query against each candidate (0 for None: a file that could not be read)."""
    load_cv2()  # a clear MissingExtra before any work
    q = query if isinstance(query, Keypoints) else keypoints(query)
    out = []
    for c in candidates:
        if c is None:
            out.append(0)
            continue
        out.append(match(q, c if isinstance(c, Keypoints) else keypoints(c)).inliers)
    return out


def verified_order(scores: Sequence[float], inliers: Sequence[int], min_inliers: int = MIN_INLIERS) -> list[int]:
    """Positions of the candidates, best first: verified ones (>= min_inliers) by inlier count,
    then the rest in cosine order."""
    def key(i: int) -> tuple[int, int, float]:
        verified = inliers[i] >= min_inliers
        return (0 if verified else 1, -inliers[i] if verified else 0, -float(scores[i]))
    return sorted(range(len(scores)), key=key)


def verify_images(query: Image.Image, candidates: Sequence[str], load: Callable[[str], Image.Image | None]
                  ) -> list[int]:
    """Inlier counts for candidate files read with `load` (None when unreadable). Candidates
    are read and matched in a few threads: JPEG decoding and OpenCV release the GIL."""
    q = keypoints(query)

    def one(candidate: str) -> int:
        im = load(candidate)
        return 0 if im is None else match(q, keypoints(im)).inliers

    with ThreadPoolExecutor(max_workers=min(WORKERS, os.cpu_count() or 1, max(1, len(candidates)))) as pool:
        return list(pool.map(one, candidates))
