"""Real photos that installed packages ship (scikit-image, scikit-learn), and the
transformed variants the demo and the tests build from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from ..extras import require

# scikit-image photos that live inside its wheel (no download), colour ones first.
SKIMAGE_PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                  "immunohistochemistry", "camera", "moon", "coins", "brick", "grass"]


def sample_photos() -> dict[str, Image.Image]:
    """name -> RGB photo."""
    data = require("skimage.data", feature="the sample photos (demo, evaluation)", extra="eval")

    photos: dict[str, Image.Image] = {}
    for name in SKIMAGE_PHOTOS:
        arr = getattr(data, name)()
        photos[name] = Image.fromarray(np.asarray(arr)).convert("RGB")
    try:
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        for fname, arr in zip(bunch.filenames, bunch.images):
            photos[Path(fname).stem] = Image.fromarray(arr).convert("RGB")
    except ImportError:
        pass
    return photos


def variants(photo: Image.Image, seed: int = 0) -> dict[str, Image.Image]:
    """Edits a person would still call "the same picture": crop, flip, light, rotation."""
    rng = np.random.default_rng(seed)
    w, h = photo.size
    dx, dy = int(w * rng.uniform(0.08, 0.15)), int(h * rng.uniform(0.08, 0.15))
    return {
        "crop": photo.crop((dx, dy, w - dx, h - dy)),
        "flip": ImageOps.mirror(photo),
        "bright": ImageEnhance.Brightness(photo).enhance(1.4),
        "dark": ImageEnhance.Brightness(photo).enhance(0.6),
        "rot": photo.rotate(8, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=(128, 128, 128)),
        "small": photo.resize((max(1, w // 3), max(1, h // 3)), Image.Resampling.LANCZOS),
    }


def save_jpeg(im: Image.Image, path: Path, quality: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.convert("RGB").save(path, "JPEG", quality=quality)
    return path


def build_gallery(root: Path, with_variants: bool = True) -> dict[str, list[Path]]:
    """Write originals to root/photos and variants to root/variants/<name>/; returns
    name -> [original, variants...] so a caller knows the right answers."""
    groups: dict[str, list[Path]] = {}
    for name, photo in sample_photos().items():
        files = [save_jpeg(photo, root / "photos" / f"{name}.jpg", 95)]
        if with_variants:
            for kind, im in variants(photo).items():
                files.append(save_jpeg(im, root / "variants" / name / f"{name}-{kind}.jpg", 85))
        groups[name] = files
    return groups


def unseen_edits() -> dict[str, tuple[str, Image.Image]]:
    """photo name -> (kind, edit) with an edit that `variants` never makes, cycling through
    greyscale, a grey occluding box and a 60% centre crop: queries whose right answers are in
    a `build_gallery` gallery but which are not in it themselves."""
    out: dict[str, tuple[str, Image.Image]] = {}
    for i, (name, photo) in enumerate(sample_photos().items()):
        w, h = photo.size
        if i % 3 == 0:
            out[name] = ("grey", ImageOps.grayscale(photo).convert("RGB"))
        elif i % 3 == 1:
            q = photo.copy()
            ImageDraw.Draw(q).rectangle((w // 10, h // 10, w // 3, h // 3), fill=(128, 128, 128))
            out[name] = ("occluded", q)
        else:
            out[name] = ("crop60", photo.crop((w // 5, h // 5, w - w // 5, h - h // 5)))
    return out
