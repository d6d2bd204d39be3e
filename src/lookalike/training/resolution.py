"""The input size a fine-tuned model gets when `--resolution` is not given: the base model's
own (the scale its ImageNet features were learned at) for images at least that large; for
smaller images their own size rounded up to a multiple of 32, but at least 64 px. Measured on
the suite's domains (docs/fine-tuning.md, `bench/finetune_eval.py --domains`)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import InvalidQuery
from ..eval.datasets import LabelledImages
from ..models.effnet import EFFNET_SPECS

MIN_RESOLUTION, MAX_RESOLUTION = 32, 640
SMALL_FLOOR = 64  # 28-, 48- and 8-pixel images trained at 32 px lost ~10 points mAP@10 to 64 px
STRIDE = 32  # the network halves its input 5 times
SIZE_SAMPLE = 200  # image files whose size is read to choose the resolution


def base_size(base: str) -> int:
    """The input size the base model was trained at; an unknown base is a one-line error."""
    if base not in EFFNET_SPECS:
        raise InvalidQuery(f"unknown base model {base!r} (choose from {', '.join(EFFNET_SPECS)})")
    return EFFNET_SPECS[base].input_size


def default_resolution(base: str, image_size: int) -> int:
    """The base model's input size (224 px for effnet-lite0) for images at least that large,
    else the images' size rounded up to a multiple of 32, at least 64."""
    native = base_size(base)
    if image_size >= native:
        return native
    return min(native, max(SMALL_FLOOR, STRIDE * math.ceil(image_size / STRIDE)))


def typical_size(data: LabelledImages, seed: int = 0) -> int:
    """The median longer side of the images in pixels; of files, a seeded sample of up to
    SIZE_SAMPLE, reading only their headers where Pillow can."""
    if data.pixels is not None:
        return int(max(data.pixels.shape[1:3]))
    if data.paths is None:
        raise ValueError("a dataset holds either pixels or paths")
    sides = []
    for i in np.random.default_rng(seed).permutation(len(data))[:SIZE_SAMPLE]:
        try:
            with Image.open(data.paths[i]) as im:
                sides.append(max(im.size))
        except (OSError, ValueError):  # a format only imaging.py decodes (RAW, HEIC, ...)
            sides.append(max(data.image(int(i)).size))
    return int(np.median(sides))


def choose_resolution(requested: int | None, base: str, data: LabelledImages, seed: int = 0) -> tuple[int, str]:
    """`--resolution` when given, else the default for these images; with why, for the user."""
    if requested is not None:
        return requested, "--resolution"
    size = typical_size(data, seed)
    return default_resolution(base, size), f"default for {size}-pixel images; --resolution to change"
