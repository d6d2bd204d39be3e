"""Harsh edits for the photos-hard domain: what people do to a photo before asking "where is
this from?" — a tight crop of a detail, a crop turned sideways, a screenshot of part of it
with a caption, half of it covered, a phone photo of the print (perspective), very different
light. Each keeps a recognisable part of the original, so the original is still the one
right answer; most leave the global look of the photo far behind, so whole-image features
alone no longer find it first (the plain photos domain saturates at mAP 1.0)."""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

Edit = Callable[[Image.Image, np.random.Generator], Image.Image]


def crop_area(im: Image.Image, rng: np.random.Generator, area: float) -> Image.Image:
    """A crop keeping `area` of the pixels, of a random aspect near the image's, anywhere."""
    w, h = im.size
    aspect = float(rng.uniform(0.75, 1.33))
    cw = min(w, max(8, round(w * (area * aspect) ** 0.5)))
    ch = min(h, max(8, round(h * area / (cw / w))))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return im.crop((x, y, x + cw, y + ch))


def _crop(area: float) -> Edit:
    return lambda im, rng: crop_area(im, rng, area)


def _rotated_crop(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Turned by 20-35° either way, then the middle 40% cut out (no empty corners)."""
    deg = float(rng.uniform(20, 35)) * (1 if rng.random() < 0.5 else -1)
    turned = im.rotate(deg, resample=Image.Resampling.BILINEAR, expand=False)
    w, h = turned.size
    cw, ch = round(w * 0.63), round(h * 0.63)
    return turned.crop(((w - cw) // 2, (h - ch) // 2, (w + cw) // 2, (h + ch) // 2))


def _occlude_half(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Half the picture covered by two flat patches (a sticker, a thumb, a pasted block)."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    for _ in range(2):
        pw, ph = round(w * 0.5), round(h * 0.5)
        x, y = int(rng.integers(0, w - pw + 1)), int(rng.integers(0, h - ph + 1))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rectangle((x, y, x + pw, y + ph), fill=colour)
    return out


def _perspective(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The photo seen at an angle, as a phone photographs a print or a screen: each corner
    moved by 10-25% of the side, the background a dark table."""
    w, h = im.size
    d = rng.uniform(0.10, 0.25, (4, 2)) * (w, h)
    # Where each output corner samples from (PIL's quad transform: source quadrilateral).
    quad = (-d[0, 0], -d[0, 1], -d[1, 0], h + d[1, 1], w + d[2, 0], h + d[2, 1], w + d[3, 0], -d[3, 1])
    return im.transform((w, h), Image.Transform.QUAD, tuple(float(v) for v in quad), Image.Resampling.BILINEAR,
                        fillcolor=(30, 28, 25))


def _harsh_light(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Dim, flat, warm light: brightness 0.35, contrast 0.6, a strong orange cast."""
    out = ImageEnhance.Contrast(ImageEnhance.Brightness(im).enhance(0.35)).enhance(0.6)
    cast = np.asarray(out, np.float32) * np.array([1.35, 1.0, 0.6], np.float32)
    return Image.fromarray(np.clip(cast, 0, 255).astype(np.uint8))


def _grey_crop_jpeg(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A 35% crop, greyscale, saved at JPEG quality 20 (a forwarded chat picture)."""
    crop = ImageOps.grayscale(crop_area(im, rng, 0.35)).convert("RGB")
    buf = io.BytesIO()
    crop.save(buf, "JPEG", quality=20)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _captioned_screenshot(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Half of the photo, shrunk to a third, with white bands and caption bars around it."""
    part = crop_area(im, rng, 0.5)
    part = part.resize((max(8, part.width // 3), max(8, part.height // 3)), Image.Resampling.LANCZOS)
    band = max(6, part.height // 4)
    canvas = Image.new("RGB", (part.width, part.height + 2 * band), (255, 255, 255))
    canvas.paste(part, (0, band))
    draw = ImageDraw.Draw(canvas)
    for row in (band // 3, part.height + band + band // 3):  # caption text as dark bars
        x = 4
        while x < part.width - 10:
            word = int(rng.integers(6, 20))
            draw.rectangle((x, row, min(part.width - 4, x + word), row + max(2, band // 3)), fill=(20, 20, 20))
            x += word + 5
    return canvas


def _crop_light_turn(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Combined: a 40% crop, turned 90°, brighter and washed out."""
    crop = crop_area(im, rng, 0.4).transpose(Image.Transpose.ROTATE_90)
    return ImageEnhance.Contrast(ImageEnhance.Brightness(crop).enhance(1.6)).enhance(0.5)


HARD_EDITS: dict[str, Edit] = {
    "crop 20%": _crop(0.2),
    "crop 30%": _crop(0.3),
    "rotate 20-35° + crop 40%": _rotated_crop,
    "two patches over half": _occlude_half,
    "perspective": _perspective,
    "dim warm light": _harsh_light,
    "crop 35% + grey + JPEG q20": _grey_crop_jpeg,
    "screenshot of half + caption": _captioned_screenshot,
    "crop 40% + turn 90° + bright": _crop_light_turn,
}
