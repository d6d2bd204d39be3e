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
