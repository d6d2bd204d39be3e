"""Geometric verification: are two images the same picture? ORB keypoints are matched
between them and a similarity transform (scale, rotation, shift) is fitted with RANSAC. Two
files are the same picture when many matches agree on one transform that barely rotates and
maps each image onto most of the other: re-encodes, resizes, small crops and light changes
pass; mirror images, rotations, large crops and different shots of a scene do not.

Duplicate detection uses this as the second signal behind the CNN features, which also
score different shots of the same scene, or two alike products, very high."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np
from PIL import Image

from ..extras import require

SIDE = 512  # images are compared at this size (longer side)
MAX_FEATURES = 500
MIN_SIDE = 48
_MIN_MATCHES = 10


@dataclass
class Keypoints:
    size: tuple[int, int]  # (width, height) at the comparison scale
    points: np.ndarray  # float32 [n, 2]
    descriptors: np.ndarray | None  # uint8 [n, 32]


@dataclass
class PictureMatch:
    inliers: int  # matches consistent with the fitted transform
    rotation: float  # degrees
    scale: float
    coverage: float  # the smaller share of either image that the other covers (0..1)

    def same_picture(self, min_inliers: int, max_rotation: float, min_coverage: float) -> bool:
        return self.inliers >= min_inliers and abs(self.rotation) <= max_rotation and self.coverage >= min_coverage


def load_cv2() -> ModuleType:
    """OpenCV, an optional dependency: only the near-duplicate tier needs it."""
    return require("cv2", feature="near-duplicate detection (keypoint matching)", extra="duplicates")


def keypoints(im: Image.Image) -> Keypoints:
    """ORB keypoints at the comparison scale; none for images under MIN_SIDE pixels a side,
    which are too small to verify."""
    grey = im.convert("L")
    w, h = grey.size
    if min(w, h) < MIN_SIDE:
        return Keypoints((w, h), np.zeros((0, 2), np.float32), None)
    s = SIDE / max(w, h)
    grey = grey.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    arr = np.asarray(grey)
    found, desc = load_cv2().ORB_create(nfeatures=MAX_FEATURES).detectAndCompute(arr, None)
    points = np.array([k.pt for k in found], np.float32).reshape(-1, 2)
    return Keypoints((arr.shape[1], arr.shape[0]), points, desc)


def match(a: Keypoints, b: Keypoints) -> PictureMatch:
    """How `a` maps onto `b`; inliers 0 when there is no consistent transform."""
    none = PictureMatch(0, 0.0, 0.0, 0.0)
    if a.descriptors is None or b.descriptors is None or len(a.points) < _MIN_MATCHES or len(b.points) < _MIN_MATCHES:
        return none
    cv2 = load_cv2()
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a.descriptors, b.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.75 * p[1].distance]  # Lowe's ratio test
    if len(good) < _MIN_MATCHES:
        return none
    src = a.points[[g.queryIdx for g in good]]
    dst = b.points[[g.trainIdx for g in good]]
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=SIDE / 80)
    if m is None or inliers is None:
        return none
    scale = float(np.hypot(m[0, 0], m[1, 0]))
    rotation = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    if scale <= 1e-3:
        return none
    return PictureMatch(int(inliers.sum()), rotation, scale, _coverage(m, a.size, b.size))


def _coverage(m: np.ndarray, size_a: tuple[int, int], size_b: tuple[int, int]) -> float:
    """Overlap of a's frame (mapped into b) and b's frame, as a share of the larger of the two
    (bounding box of the mapped corners: rotations are small for anything that passes)."""
    (wa, ha), (wb, hb) = size_a, size_b
    corners = np.array([[0, 0], [wa, 0], [wa, ha], [0, ha]], dtype=np.float64) @ m[:, :2].T + m[:, 2]
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    overlap = max(0.0, min(x1, wb) - max(x0, 0)) * max(0.0, min(y1, hb) - max(y0, 0))
    area_a, area_b = (x1 - x0) * (y1 - y0), wb * hb
    return float(overlap / max(area_a, area_b, 1e-9))
