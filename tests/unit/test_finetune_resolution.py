"""The default fine-tuning resolution: the base model's own input size whatever the size of
the training images (small images upscaled to it measured better than at their own size:
docs/fine-tuning.md); an explicit --resolution wins."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # lookalike.training needs the [train] extra

from lookalike.errors import InvalidQuery  # noqa: E402
from lookalike.training.finetune import FinetuneConfig  # noqa: E402
from lookalike.training.resolution import default_resolution, input_resolution  # noqa: E402


def test_default_is_the_base_models_input_size():
    assert default_resolution("effnet-lite0") == 224
    assert default_resolution("effnet-lite2") == 260
    assert input_resolution(None, "effnet-lite0") == 224
    assert FinetuneConfig(name="x").resolution is None  # resolved per base model when training starts


def test_explicit_resolution_wins():
    assert input_resolution(64, "effnet-lite0") == 64
    assert input_resolution(320, "effnet-lite2") == 320


def test_unknown_base_and_bad_resolution_are_one_line_errors():
    with pytest.raises(InvalidQuery, match="unknown base model 'resnet50'"):
        FinetuneConfig(name="x", base="resnet50").check()
    with pytest.raises(InvalidQuery, match="between 32 and 640, got 16"):
        FinetuneConfig(name="x", resolution=16).check()
    FinetuneConfig(name="x", resolution=None).check()
