"""The default fine-tuning resolution: the base model's input size, unless the training
images are smaller (then their size, rounded up to a multiple of 32); --resolution wins."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.eval.datasets import LabelledImages, load_folder_dataset

pytest.importorskip("torch")  # lookalike.training needs the [train] extra

from lookalike.training.resolution import default_resolution, input_resolution, typical_size  # noqa: E402


@pytest.mark.parametrize(("image_px", "expected"), [
    (8, 32),  # scikit-learn digits: never below the smallest input the network takes
    (28, 32),  # Fashion-MNIST
    (48, 64),  # GNOME icons
    (200, 224),
    (224, 224),  # the base model's own size from here on
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


def test_small_images_get_their_own_size(tmp_path):
    data = _folder(tmp_path, [(60, 40), (64, 64), (50, 30), (90, 20), (40, 61)])
    assert typical_size(data) == 61  # median longer side
    assert input_resolution(None, "effnet-lite0", data) == 64


def test_large_images_get_the_base_size(tmp_path):
    data = _folder(tmp_path, [(512, 384), (300, 400), (640, 480), (100, 80)])
    assert input_resolution(None, "effnet-lite0", data) == 224


def test_in_memory_images_use_their_array_size():
    pixels = np.zeros((6, 28, 28), np.uint8)
    data = LabelledImages(np.array([0, 0, 0, 1, 1, 1]), ["a", "b"], pixels=pixels)
    assert input_resolution(None, "effnet-lite0", data) == 32


def test_explicit_resolution_wins(tmp_path):
    data = _folder(tmp_path, [(512, 384), (300, 400)])
    assert input_resolution(96, "effnet-lite0", data) == 96
    small = LabelledImages(np.array([0, 1]), ["a", "b"], pixels=np.zeros((2, 28, 28, 3), np.uint8))
    assert input_resolution(224, "effnet-lite0", small) == 224
