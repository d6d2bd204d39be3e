"""Labelled image sets for evaluation and fine-tuning: Fashion-MNIST from Debian's
`dataset-fashion-mnist` package, and any folder-per-class tree (ROOT/<class>/<images>)."""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import fashion_mnist_dir
from ..errors import InvalidQuery, NotFound, Unsupported
from ..imaging import is_image_name, load_image

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@dataclass
class LabelledImages:
    """n images (decoded lazily via `image(i)`), integer labels and the class names."""

    labels: np.ndarray
    class_names: list[str]
    pixels: np.ndarray | None = None  # uint8 [n, H, W] or [n, H, W, 3] for in-memory sets
    paths: list[Path] | None = None  # for on-disk sets

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        if self.pixels is not None:
            return Image.fromarray(self.pixels[i]).convert("RGB")
        if self.paths is None:
            raise ValueError("a dataset holds either pixels or paths")
        return load_image(self.paths[i])

    def subset(self, idx: np.ndarray) -> LabelledImages:
        idx = np.asarray(idx)
        return LabelledImages(self.labels[idx], self.class_names,
                              None if self.pixels is None else self.pixels[idx],
                              None if self.paths is None else [self.paths[i] for i in idx])


def fashion_mnist_available(root: Path | None = None) -> bool:
    root = root or fashion_mnist_dir()
    return (root / "t10k-images-idx3-ubyte.gz").exists()


def load_fashion_mnist(split: str = "test", root: Path | None = None) -> LabelledImages:
    """split: "train" (60k) or "test" (10k); 28x28 greyscale product photos, 10 classes."""
    root = root or fashion_mnist_dir()
    prefix = {"train": "train", "test": "t10k"}[split]
    if not fashion_mnist_available(root):
        raise NotFound(f"Fashion-MNIST not found in {root}: install Debian's dataset-fashion-mnist "
                       "(apt-get install dataset-fashion-mnist) or set LOOKALIKE_FASHION_MNIST")
    images = _read_idx(root / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(root / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return LabelledImages(labels, list(FASHION_CLASSES), pixels=images)


def load_folder_dataset(root: str | os.PathLike) -> LabelledImages:
    """ROOT/<class>/<image files> (recursively inside each class folder)."""
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise InvalidQuery(f"{root} has no class folders (expected ROOT/<class>/<images>)")
    paths: list[Path] = []
    labels: list[int] = []
    for c, name in enumerate(classes):
        for p in sorted((root / name).rglob("*")):
            if p.is_file() and is_image_name(p):
                paths.append(p)
                labels.append(c)
    if not paths:
        raise InvalidQuery(f"{root} has class folders but no images in them")
    return LabelledImages(np.array(labels, dtype=np.int64), classes, paths=paths)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise Unsupported(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
