"""Near-duplicate robustness: query with an edited copy of a gallery image and check that the
original comes back first (recall@1) or in the top 10 (recall@10)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

Transform = Callable[[Image.Image, np.random.Generator], Image.Image]


def _fill(im: Image.Image) -> tuple[int, ...]:
    """The median border colour, so rotation corners blend with the background."""
    a = np.asarray(im.convert("RGB"))
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return tuple(int(v) for v in np.median(border, axis=0))


def _rotate(deg: float) -> Transform:
    return lambda im, _rng: im.rotate(deg, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=_fill(im))


def _centre_crop(fraction: float) -> Transform:
    def crop(im: Image.Image, _rng: np.random.Generator) -> Image.Image:
        w, h = im.size
        cw, ch = max(1, round(w * fraction)), max(1, round(h * fraction))
        left, top = (w - cw) // 2, (h - ch) // 2
        return im.crop((left, top, left + cw, top + ch))
    return crop


def _occlude(area: float) -> Transform:
    """A grey square patch covering `area` of the image, at a random position."""
    def occlude(im: Image.Image, rng: np.random.Generator) -> Image.Image:
        w, h = im.size
        pw, ph = max(1, round(w * area ** 0.5)), max(1, round(h * area ** 0.5))
        x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
        out = im.convert("RGB").copy()
        out.paste((128, 128, 128), (x, y, x + pw, y + ph))
        return out
    return occlude


def _enhance(kind: type, factor: float) -> Transform:
    return lambda im, _rng: kind(im).enhance(factor)


def _blur(im: Image.Image, _rng: np.random.Generator) -> Image.Image:
    # Radius relative to size (1% of the short side, at least 1 px): the same visual blur
    # on a 28 px product photo and a 512 px photo.
    return im.filter(ImageFilter.GaussianBlur(max(1.0, 0.01 * min(im.size))))


def _jpeg(quality: int) -> Transform:
    def jpeg(im: Image.Image, _rng: np.random.Generator) -> Image.Image:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return jpeg


def _downscale(fraction: float) -> Transform:
    return lambda im, _rng: im.resize((max(1, round(im.width * fraction)), max(1, round(im.height * fraction))),
                                      Image.Resampling.LANCZOS)


TRANSFORMS: dict[str, Transform] = {
    "rotate 15°": _rotate(15),
    "rotate 90°": lambda im, _rng: im.transpose(Image.Transpose.ROTATE_90),
    "crop 60%": _centre_crop(0.6),
    "occlude 25%": _occlude(0.25),
    "brightness ×0.5": _enhance(ImageEnhance.Brightness, 0.5),
    "brightness ×1.5": _enhance(ImageEnhance.Brightness, 1.5),
    "contrast ×0.5": _enhance(ImageEnhance.Contrast, 0.5),
    "gaussian blur": _blur,
    "JPEG q15": _jpeg(15),
    "grayscale": lambda im, _rng: ImageOps.grayscale(im).convert("RGB"),
    "horizontal flip": lambda im, _rng: ImageOps.mirror(im),
    "downscale 25%": _downscale(0.25),
}


@dataclass
class RobustnessQueries:
    """Edited copies of some gallery images: `images[t][i]` is transform t applied to the
    image at gallery index `targets[i]`; `sources[i]` says where that image came from;
    `extra_gallery` are originals appended to the evaluation gallery (the bundled photos)."""

    transforms: list[str]
    images: dict[str, list[Image.Image]]
    targets: np.ndarray
    sources: list[str]
    extra_gallery: list[Image.Image] = field(default_factory=list)


def make_queries(originals: list[Image.Image], targets: np.ndarray, sources: list[str], seed: int = 0,
                 extra_gallery: list[Image.Image] | None = None) -> RobustnessQueries:
    rng = np.random.default_rng(seed)
    images = {name: [tf(im.convert("RGB"), rng).convert("RGB") for im in originals] for name, tf in TRANSFORMS.items()}
    return RobustnessQueries(list(TRANSFORMS), images, np.asarray(targets), list(sources), list(extra_gallery or []))


@dataclass
class RobustnessResult:
    """method -> transform -> source ("all", "photos", "dataset") -> {k: recall@k}."""

    transforms: list[str]
    n_queries: dict[str, int]
    recall: dict[str, dict[str, dict[str, dict[int, float]]]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "transforms": self.transforms,
            "n_queries": self.n_queries,
            "recall": {m: {t: {s: {str(k): v for k, v in r.items()} for s, r in by_src.items()}
                           for t, by_src in by_t.items()} for m, by_t in self.recall.items()},
        }
