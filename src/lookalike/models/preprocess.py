"""Image -> model input, shared by every CNN extractor and by fine-tuning."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_square(image: Image.Image, size: int) -> np.ndarray:
    """Resize the whole image to size x size (no crop: retrieval must see the edges too,
    where a centre crop would drop content) -> uint8 HxWx3. The model normalises inside
    the ONNX graph, so workers hand over compact uint8 arrays."""
    if image.size != (size, size):
        # reducing_gap lets Pillow shrink big images in two cheap steps with little loss.
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def resize_square_grey(image: Image.Image, size: int) -> np.ndarray:
    """Greyscale size x size uint8, for the handcrafted texture and keypoint extractors."""
    grey = image.convert("L")
    if grey.size != (size, size):
        grey = grey.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(grey, dtype=np.uint8)


RESIZE_MODES = ("squash", "pad", "crop")
PAD_GREY = 127  # the graph maps 127 to 0, so the padding adds no activation of its own


def aspect_resize(image: Image.Image, size: int, mode: str = "squash") -> np.ndarray:
    """size x size uint8 RGB: "squash" stretches the whole image (`resize_square`), "pad"
    keeps its aspect ratio and centres it on grey, "crop" fills the square and cuts the
    centre out of the longer side."""
    if mode == "squash" or image.width == image.height:
        return resize_square(image, size)
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r} (known: {', '.join(RESIZE_MODES)})")
    scale = (min if mode == "pad" else max)(size / image.width, size / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    resized = image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    canvas = Image.new("RGB", (size, size), (PAD_GREY,) * 3)
    canvas.paste(resized, ((size - w) // 2, (size - h) // 2))
    return np.asarray(canvas, dtype=np.uint8)
