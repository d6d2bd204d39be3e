"""A catalogue evaluation built from Fashion-MNIST: products in colours, shoppers' photos.

Each product is a Fashion-MNIST test image tinted one palette colour (its `colour` field; the
class is its `category`). A shopper's photo of a product is the same garment recoloured to
*another* palette colour, scaled and pasted at a random place on a photo texture (brick,
grass, gravel, coffee, cat). Measured (bench/catalogue_eval.py):
- precision@10 of same-category results for "more like this item", without and with a
  `category` filter;
- recall@1/@10 of the photographed product with colour=any (a recoloured product finds its
  original);
- same-colour precision@10 (results in the photo's colour) with colour=any vs colour=same."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .datasets import FASHION_CLASSES, load_fashion_mnist

PALETTE = {"red": (200, 30, 30), "green": (40, 160, 60), "blue": (40, 70, 200), "yellow": (230, 200, 40),
           "purple": (130, 50, 160), "orange": (240, 130, 20)}
CATEGORIES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
assert len(CATEGORIES) == len(FASHION_CLASSES)
PRODUCT_SIZE = 112


@dataclass
class Product:
    sku: str
    category: str
    colour: str
    index: int  # Fashion-MNIST test index
    file: Path


def tint(grey: np.ndarray, colour: str) -> Image.Image:
    """A grey garment on black, dyed `colour` (brightness kept as shading)."""
    g = grey.astype(np.float32)[..., None] / 255.0
    rgb = g * np.array(PALETTE[colour], np.float32)[None, None]
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).resize((PRODUCT_SIZE, PRODUCT_SIZE), Image.Resampling.BICUBIC)


def build_products(root: Path, per_class: int, seed: int = 0) -> list[Product]:
    """`per_class` products of each category as PNG files under `root`, each in a random colour."""
    data = load_fashion_mnist("test")
    rng = np.random.default_rng(seed)
    names = list(PALETTE)
    root.mkdir(parents=True, exist_ok=True)
    products = []
    for label, category in enumerate(CATEGORIES):
        for n, i in enumerate(np.flatnonzero(data.labels == label)[:per_class]):
            colour = names[int(rng.integers(len(names)))]
            path = root / f"{category}-{n:04d}.png"
            tint(data.pixels[int(i)], colour).save(path)  # type: ignore[index]
            products.append(Product(f"SKU-{label}{n:04d}", category, colour, int(i), path))
    return products


def write_csv(products: list[Product], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "image", "category", "colour", "price"])
        for n, p in enumerate(products):
            writer.writerow([p.sku, str(p.file), p.category, p.colour, 10 + (n * 7) % 90])


def textures() -> list[np.ndarray]:
    from skimage import data

    out = []
    for name in ("brick", "grass", "gravel", "coffee", "chelsea"):
        im = getattr(data, name)()
        out.append(np.stack([im] * 3, axis=-1) if im.ndim == 2 else im[..., :3])
    return out


def shopper_photo(grey: np.ndarray, colour: str, background: np.ndarray, rng: np.random.Generator,
                  size: int = 224) -> Image.Image:
    """The garment dyed `colour`, 50-70% of the frame, pasted at a random place on a crop of `background`."""
    h, w = background.shape[:2]
    y, x = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
    canvas = background[y:y + size, x:x + size].astype(np.float32)
    side = int(size * rng.uniform(0.5, 0.7))
    garment = np.asarray(tint(grey, colour).resize((side, side), Image.Resampling.BICUBIC), np.float32)
    alpha = np.asarray(Image.fromarray(grey).resize((side, side), Image.Resampling.BICUBIC), np.float32)[..., None] / 255.0
    alpha = np.clip(alpha * 4, 0, 1)  # the garment is opaque; only its dark edge blends
    oy, ox = int(rng.integers(0, size - side)), int(rng.integers(0, size - side))
    patch = canvas[oy:oy + side, ox:ox + side]
    canvas[oy:oy + side, ox:ox + side] = alpha * garment + (1 - alpha) * patch
    return Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
