"""The default fine-tuning resolution: the base model's input size for images at least that
large; smaller images their own size rounded up to a multiple of 32, at least 64 (measured:
docs/fine-tuning.md); an explicit --resolution wins."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import InvalidQuery
from lookalike.eval.datasets import LabelledImages, load_folder_dataset

pytest.importorskip("torch")  # lookalike.training needs the [train] extra

from lookalike.training.finetune import FinetuneConfig  # noqa: E402
from lookalike.training.resolution import choose_resolution, default_resolution, typical_size  # noqa: E402


@pytest.mark.parametrize(("image_px", "expected"), [
    (8, 64),  # scikit-learn digits: 32 px lost ~10 points to 64 px
    (28, 64),  # Fashion-MNIST
    (48, 64),  # GNOME icons
    (100, 128),  # rounded up to a multiple of 32
    (200, 224),  # never above the base model's size
    (224, 224),
    (640, 224),
    (4000, 224),
])
def test_default_resolution_lite0(image_px, expected):
    assert default_resolution("effnet-lite0", image_px) == expected


def test_default_resolution_follows_the_base_model():
    assert default_resolution("effnet-lite2", 1024) == 260
    assert default_resolution("effnet-lite2", 250) == 256


def _folder(tmp_path, sizes: list[tuple[int, int]]) -> LabelledImages:
    """Images of the given sizes (Mandelbrot renderings) as files in two class folders."""
    for i, size in enumerate(sizes):
        folder = tmp_path / f"class{i % 2}"
        folder.mkdir(exist_ok=True)
        Image.effect_mandelbrot(size, (-2.0, -1.5, 1.0, 1.5), 50 + i).convert("RGB").save(folder / f"{i}.png")
    return load_folder_dataset(tmp_path)


def test_images_smaller_than_the_base_size_get_their_own_size(tmp_path):
    data = _folder(tmp_path, [(120, 80), (100, 100), (150, 30), (90, 20), (60, 130)])
    assert typical_size(data) == 120  # the median longer side
    resolution, why = choose_resolution(None, "effnet-lite0", data)
    assert resolution == 128 and why.startswith("default for 120-pixel images")


def test_images_larger_than_the_base_size_get_the_base_size(tmp_path):
    data = _folder(tmp_path, [(512, 384), (300, 400), (640, 480), (100, 80)])
    assert choose_resolution(None, "effnet-lite0", data)[0] == 224


def test_in_memory_images_use_their_array_size():
    data = LabelledImages(np.array([0, 0, 1, 1]), ["a", "b"], pixels=np.zeros((4, 28, 28), np.uint8))
    assert choose_resolution(None, "effnet-lite0", data)[0] == 64


def test_explicit_resolution_wins(tmp_path):
    large = _folder(tmp_path, [(512, 384), (300, 400)])
    assert choose_resolution(96, "effnet-lite0", large) == (96, "--resolution")
    small = LabelledImages(np.array([0, 1]), ["a", "b"], pixels=np.zeros((2, 28, 28, 3), np.uint8))
    assert choose_resolution(224, "effnet-lite0", small)[0] == 224
    assert FinetuneConfig(name="x").resolution is None  # chosen from the images when training starts


def test_unknown_base_and_bad_resolution_are_one_line_errors():
    with pytest.raises(InvalidQuery, match="unknown base model 'resnet50'"):
        FinetuneConfig(name="x", base="resnet50").check()
    with pytest.raises(InvalidQuery, match="between 32 and 640, got 16"):
        FinetuneConfig(name="x", resolution=16).check()
