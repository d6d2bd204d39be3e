"""The input size a fine-tuned model gets when `--resolution` is not given: the base model's
own (the scale its ImageNet features were learned at), unless the training images are
smaller. Chosen on the suite's domains (docs/fine-tuning.md, bench/finetune_eval.py)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..eval.datasets import LabelledImages
from ..models.effnet import EFFNET_SPECS

MIN_RESOLUTION, MAX_RESOLUTION = 32, 640
STRIDE = 32  # the network halves the input 5 times
SIZE_SAMPLE = 200  # images whose size is read to choose the resolution


def default_resolution(base: str, image_size: int) -> int:
    """The base model's input size (224 px for effnet-lite0), or for images smaller than that
    their size rounded up to a multiple of 32, at least 32."""
    native = EFFNET_SPECS[base].input_size if base in EFFNET_SPECS else MAX_RESOLUTION
    if image_size >= native:
        return native
    return max(MIN_RESOLUTION, min(native, STRIDE * math.ceil(image_size / STRIDE)))


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


def input_resolution(requested: int | None, base: str, data: LabelledImages, seed: int = 0) -> int:
    """`--resolution` when given, else the default for these images."""
    return requested if requested is not None else default_resolution(base, typical_size(data, seed))
