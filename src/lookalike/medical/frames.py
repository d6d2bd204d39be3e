"""What a scan file yields: one picture per frame or slice, with its fields and address."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

# Refused before decoding: a header that claims more than this is broken or hostile.
MAX_FRAMES = 4096  # frames of one DICOM file, slices of one NIfTI volume
MAX_VOXELS = 1 << 28  # all frames together (268M values: ~1 GB as float32 while windowing)


@dataclass
class ScanFrame:
    fragment: str | None  # "frame=N" / "slice=N" (engine/entries.py), None: the file is one image
    image: Image.Image  # 8-bit RGB after windowing, what the model sees
    fields: dict[str, Any] = field(default_factory=dict)
