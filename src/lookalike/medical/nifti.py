"""Reading NIfTI volumes (`.nii`, `.nii.gz`) as a series of axial slices (nibabel).

The volume is reoriented to the closest RAS+ axes, so slice k is axial and its height (the
world z of its centre, mm) is recorded as `slice_position`. One window for the whole volume
(robust percentiles of its non-zero voxels, unless a preset or C,W is asked for), so a slice
keeps its brightness relative to its neighbours. The header's free-text `descrip` is never read."""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
from PIL import Image

from ..config import max_pixels
from ..errors import ImageLoadError, MissingExtra
from .frames import MAX_FRAMES, MAX_VOXELS, ScanFrame
from .window import Window, apply_window, robust_range

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_name(name: str) -> bool:
    return name.lower().endswith(NIFTI_SUFFIXES)


def _nibabel() -> Any:
    try:
        import nibabel
    except ModuleNotFoundError:
        raise MissingExtra("reading NIfTI volumes", "dicom") from None
    return nibabel


def load_volume(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(RAS+ float32 volume [x, y, z], affine) of a NIfTI file's first 3-D volume."""
    nib = _nibabel()
    raw = data
    if data[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError):
            raise ImageLoadError(name, "truncated or corrupt gzip data") from None
    try:
        img = nib.Nifti1Image.from_bytes(raw) if raw[344:348] in (b"n+1\0", b"ni1\0") else nib.Nifti2Image.from_bytes(raw)
    except Exception as e:  # nibabel raises many types for a bad header
        raise ImageLoadError(name, f"not a readable NIfTI file ({type(e).__name__})") from None
    shape = tuple(int(s) for s in img.shape)
    if len(shape) < 3 or any(s < 1 for s in shape[:3]):
        raise ImageLoadError(name, f"not a 3-D volume (shape {shape})")
    x, y, z = shape[:3]
    if x * y > max_pixels():
        raise ImageLoadError(name, f"too large: {x}x{y} slices exceed the {max_pixels():,} pixel limit")
    if z > MAX_FRAMES or x * y * z > MAX_VOXELS:
        raise ImageLoadError(name, f"too large: {x}x{y}x{z} voxels (limits {MAX_FRAMES:,} slices, {MAX_VOXELS:,} voxels)")
    try:
        img = nib.as_closest_canonical(img)
        volume = np.asarray(img.dataobj[..., 0] if len(img.shape) > 3 else img.dataobj, dtype=np.float32)
        while volume.ndim > 3:
            volume = volume[..., 0]
    except MemoryError:
        raise ImageLoadError(name, "too large to decode in memory") from None
    except Exception as e:
        raise ImageLoadError(name, f"truncated or corrupt voxel data ({type(e).__name__})") from None
    return volume, np.asarray(img.affine, dtype=np.float64)


def axial_slice(volume: np.ndarray, k: int) -> np.ndarray:
    """Slice k as a picture: anterior up, the patient's right on the left (radiological)."""
    return np.flipud(volume[:, :, k].T)


def slice_height(affine: np.ndarray, volume_shape: tuple[int, ...], k: int) -> float:
    cx, cy = (volume_shape[0] - 1) / 2.0, (volume_shape[1] - 1) / 2.0
    return float((affine @ np.array([cx, cy, k, 1.0]))[2])


def read_nifti(data: bytes, name: str, window: Window) -> list[ScanFrame]:
    volume, affine = load_volume(data, name)
    if window.centre is not None and window.width is not None:
        centre, width, how = window.centre, window.width, "explicit"
    else:  # presets are CT units: a NIfTI volume has no modality to trust them with
        nonzero = volume[volume != 0]
        lo, hi = robust_range(nonzero if nonzero.size else volume)
        centre, width, how = (lo + hi) / 2.0, max(hi - lo, 1e-6), "percentiles"
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    base = {"format": "nifti", "rows": int(volume.shape[1]), "columns": int(volume.shape[0]),
            "pixel_spacing": round(float(spacing[1]), 4), "slice_thickness": round(float(spacing[2]), 4),
            "window": f"{centre:g},{width:g} ({how})"}
    out = []
    for k in range(volume.shape[2]):
        grey = apply_window(axial_slice(volume, k), centre, width)
        fields = {**base, "slice": k, "slice_position": round(slice_height(affine, volume.shape, k), 3)}
        out.append(ScanFrame(f"slice={k}", Image.fromarray(grey, "L").convert("RGB"), fields))
    return out



