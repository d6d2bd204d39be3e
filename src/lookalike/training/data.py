"""Training inputs: images resized once to the model's resolution, a seeded stratified
validation split, class-balanced batches, and batch augmentations on tensors."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..eval.datasets import LabelledImages
from ..models.preprocess import resize_square

MAX_VAL_IMAGES = 2000  # enough for a stable mAP@100 per epoch, cheap to embed


def prepare_inputs(data: LabelledImages, resolution: int) -> np.ndarray:
    """Every image -> uint8 [n, R, R, 3] through `resize_square`, exactly what the ONNX
    extractor feeds the model at search time, so training sees the inference pixels."""
    out = np.empty((len(data), resolution, resolution, 3), dtype=np.uint8)
    for i in range(len(data)):
        if data.pixels is not None:
            image = Image.fromarray(data.pixels[i]).convert("RGB")
        else:
            image = data.image(i)
        out[i] = resize_square(image, resolution)
    return out


def split_train_val(labels: np.ndarray, seed: int, fraction: float = 0.1,
                    max_val: int = MAX_VAL_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """Stratified held-out split: the same share of every class (at least 2 per class, so
    each validation query has a relevant item), seeded."""
    rng = np.random.default_rng(seed)
    n_val = min(max_val, max(int(round(len(labels) * fraction)), 1))
    share = n_val / len(labels)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = min(max(2, int(round(len(idx) * share))), len(idx) - 1)
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def balanced_batches(labels: np.ndarray, batch_size: int, rng: np.random.Generator,
                     per_class: int = 4) -> Iterator[np.ndarray]:
    """One epoch (every image once) as batches of `per_class` images from each of
    batch_size/per_class classes, so every anchor has positives (triplet, SupCon)."""
    queues = {int(c): list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)}
    n_batches = math.ceil(len(labels) / batch_size)
    for _ in range(n_batches):
        batch: list[int] = []
        while len(batch) < batch_size:
            left = [c for c, q in queues.items() if q]
            if not left:
                break
            sizes = np.array([len(queues[c]) for c in left], dtype=np.float64)
            n_cls = min(len(left), max(1, (batch_size - len(batch)) // per_class))
            chosen = rng.choice(left, size=n_cls, replace=False, p=sizes / sizes.sum())
            for c in chosen:
                take = min(per_class, batch_size - len(batch), len(queues[c]))
                batch.extend(queues[c][:take])
                del queues[c][:take]
        if batch:
            yield np.array(batch)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8/float NHWC 0..255 -> float NCHW as the shipped weights expect (same as the
    ONNX graph: (x - 127) / 128)."""
    return (images.permute(0, 3, 1, 2).float() - 127.0) / 128.0


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Batch augmentation (uint8 NHWC -> normalised float NCHW) for the edits a search must
    survive: crop/zoom, mirror, small rotation and shift, brightness/contrast, greyscale,
    downscaling blur."""
    n = images.shape[0]
    x = images.permute(0, 3, 1, 2).float()
    dev = x.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(dev)

    # Affine: zoom into 75-100 % of the image (a random crop), shift, rotate +-10 deg, mirror.
    scale = uniform(0.75, 1.0)
    angle = uniform(-10, 10) * math.pi / 180
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).to(dev)
    tx, ty = uniform(-1, 1) * (1 - scale), uniform(-1, 1) * (1 - scale)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # Photometric: contrast around the mean, brightness, sometimes greyscale.
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(0.7, 1.3).view(n, 1, 1, 1) + mean + uniform(-30, 30).view(n, 1, 1, 1)
    grey = (torch.rand(n, generator=gen) < 0.2).to(dev).view(n, 1, 1, 1)
    x = torch.where(grey, x.mean(dim=1, keepdim=True).expand_as(x), x)

    # Downscale blur on some images (a thumbnail-sized query).
    blur = torch.rand(n, generator=gen) < 0.2
    if bool(blur.any()):
        size = x.shape[-1]
        small = F.interpolate(x[blur.to(dev)], scale_factor=0.5, mode="bilinear", align_corners=False)
        x[blur.to(dev)] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return (x.clamp(0, 255) - 127.0) / 128.0
