"""The input size a fine-tuned model gets when `--resolution` is not given: the base model's
own, the scale its ImageNet features were learned at, whatever the size of the training
images. Measured on the suite's domains (docs/fine-tuning.md, bench/finetune_eval.py
--domains): 28-pixel products and 8-pixel digits upscaled to 224 px beat training at their
own size (32 px) and at 64 px."""

from __future__ import annotations

from ..errors import InvalidQuery
from ..models.effnet import EFFNET_SPECS

MIN_RESOLUTION, MAX_RESOLUTION = 32, 640


def default_resolution(base: str) -> int:
    """The base model's input size: 224 px for effnet-lite0, 260 px for effnet-lite2."""
    if base not in EFFNET_SPECS:
        raise InvalidQuery(f"unknown base model {base!r} (choose from {', '.join(EFFNET_SPECS)})")
    return EFFNET_SPECS[base].input_size


def input_resolution(requested: int | None, base: str) -> int:
    """`--resolution` when given, else the base model's input size."""
    return requested if requested is not None else default_resolution(base)
