"""Reading DICOM files into windowed 8-bit pictures, one per frame (pydicom + pylibjpeg).

Pixels reach the model as a radiologist would see them: the modality LUT (rescale slope and
intercept, e.g. to Hounsfield units) first, then the window (medical/window.py), then
MONOCHROME1 inverted so that dense is always bright. Colour images (RGB, YBR, palette) are
converted to RGB and not windowed. Every refusal is an `ImageLoadError` with one short reason."""

from __future__ import annotations

import io
import logging
import warnings
from typing import Any

import numpy as np
from PIL import Image

from ..config import max_pixels
from ..errors import ImageLoadError, MissingExtra
from ..imaging import one_line
from .fields import dicom_fields
from .frames import MAX_FRAMES, MAX_VOXELS, ScanFrame
from .window import Window, apply_window, choose_window

# pydicom warns about malformed elements quoting their values, which may be PHI: never show them.
# Installed once (per-call `catch_warnings` is not thread-safe and decoding runs in worker threads).
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")

DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic"})
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"
# Decoders pydicom uses for compressed transfer syntaxes, by the pip package that provides them.
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg", "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg", "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg", "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}


def has_preamble(head: bytes) -> bool:
    """A DICOM Part 10 file: 128 bytes of preamble, then "DICM"."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def _pydicom() -> Any:
    try:
        import pydicom
        import pydicom.config
    except ModuleNotFoundError:
        raise MissingExtra("reading DICOM files", "dicom") from None
    # Values of malformed elements must never reach a log or a terminal (they may be PHI).
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    return pydicom


def read_dicom(data: bytes, name: str, window: Window, keep_phi: bool = False) -> list[ScanFrame]:
    """Every frame of a DICOM file as a windowed RGB picture with its fields."""
    pydicom = _pydicom()
    ds = _parse(pydicom, data, name)
    _refuse_non_images(ds, name)
    rows, cols = _int(ds, "Rows"), _int(ds, "Columns")
    n_frames = max(1, _int(ds, "NumberOfFrames") or 1)
    samples = max(1, _int(ds, "SamplesPerPixel") or 1)
    if rows < 1 or cols < 1:
        raise ImageLoadError(name, "pixel data without image dimensions (Rows/Columns missing or 0)")
    if rows * cols > max_pixels():
        raise ImageLoadError(name, f"too large: {cols}x{rows} pixels exceeds the {max_pixels():,} pixel limit")
    if n_frames > MAX_FRAMES:
        raise ImageLoadError(name, f"too many frames: {n_frames:,} (limit {MAX_FRAMES:,})")
    if rows * cols * n_frames * samples > MAX_VOXELS:
        raise ImageLoadError(name, f"too large: {n_frames:,} frames of {cols}x{rows} exceed the {MAX_VOXELS:,} value limit")
    _check_decoder(pydicom, ds, name)
    pixels = _pixel_array(ds, name)
    if n_frames == 1 and pixels.ndim == (3 if samples == 1 else 4):
        n_frames = pixels.shape[0]
    frames = pixels if n_frames > 1 else pixels[None]
    base = dicom_fields(ds, keep_phi)
    out = []
    for i, frame in enumerate(frames):
        fields = dict(base)
        image, how = _render(ds, frame, i, window, base.get("modality"))
        fields["window"] = how
        position = _slice_position(ds, i)
        if position is not None:
            fields["slice_position"] = position
        if n_frames > 1:
            fields["frame"] = i
        out.append(ScanFrame(f"frame={i}" if n_frames > 1 else None, image, fields))
    return out


def _parse(pydicom: Any, data: bytes, name: str) -> Any:
    from pydicom.errors import InvalidDicomError

    force = not has_preamble(data[:132])  # a .dcm without a preamble: parse and judge the content
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=force)
    except InvalidDicomError:
        raise ImageLoadError(name, "not a DICOM file (no DICM preamble)") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError, NotImplementedError) as e:
        # The type only: a parser's message may quote an element's value, which may be PHI.
        raise ImageLoadError(name, f"corrupt DICOM header ({type(e).__name__})") from None
    if force and "SOPClassUID" not in ds and "PixelData" not in ds:
        raise ImageLoadError(name, "not a DICOM file (no DICM preamble and no DICOM elements)")
    _infer_transfer_syntax(ds)
    return ds


def _infer_transfer_syntax(ds: Any) -> None:
    """Files without a meta header (or without its transfer syntax) are uncompressed: name the
    encoding the parser found, so the pixel decoder can run."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        return
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _refuse_non_images(ds: Any, name: str) -> None:
    meta = getattr(ds, "file_meta", None)
    sop = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else ""))
    if sop == DICOMDIR_CLASS or "DirectoryRecordSequence" in ds:
        raise ImageLoadError(name, "a DICOMDIR (an index of other files, no image): index the folder it lists instead")
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        kind = _sop_name(ds)
        raise ImageLoadError(name, f"no pixel data ({kind}: not an image)" if kind else "no pixel data (not an image)")
    if "PixelData" not in ds:
        raise ImageLoadError(name, "float pixel data (parametric maps) is not supported")


def _check_decoder(pydicom: Any, ds: Any, name: str) -> None:
    from pydicom.pixels import get_decoder

    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is None:
        return  # implicit little endian assumed by pydicom
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise ImageLoadError(name, f"unsupported transfer syntax {ts.name} ({ts})") from None
    if not decoder.is_available:
        package = _DECODER_PACKAGES.get(str(ts), "pylibjpeg")
        raise MissingExtra(f"{name}: decoding {ts.name} (pip package {package})", "dicom")


def _pixel_array(ds: Any, name: str) -> np.ndarray:
    try:
        return ds.pixel_array  # pydicom converts YBR to RGB
    except MemoryError:
        raise ImageLoadError(name, "too large to decode in memory") from None
    except (ValueError, RuntimeError, OSError, EOFError, AttributeError, KeyError, TypeError, NotImplementedError) as e:
        msg = str(e).lower()
        if "less than expected" in msg or "truncat" in msg or "end of" in msg or "too short" in msg:
            raise ImageLoadError(name, "truncated pixel data") from None
        raise ImageLoadError(name, f"pixel data cannot be decoded ({one_line(e, 100)})") from None


def _render(ds: Any, frame: np.ndarray, index: int, window: Window, modality: str | None) -> tuple[Image.Image, str]:
    from pydicom.pixels import apply_color_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(frame, ds)
        return Image.fromarray(_to_uint8(rgb)).convert("RGB"), "palette"
    if frame.ndim == 3:  # RGB (YBR already converted)
        return Image.fromarray(_to_uint8(frame)).convert("RGB"), "colour"
    values = _modality_lut(ds, frame, index)
    centre, width, how = choose_window(window, modality, _file_window(ds, index), values)
    grey = apply_window(values, centre, width)
    if photometric == "MONOCHROME1":
        grey = 255 - grey  # MONOCHROME1 stores dense as dark: show it as a viewer does
    return Image.fromarray(grey, "L").convert("RGB"), f"{centre:g},{width:g} ({how})"


def _modality_lut(ds: Any, frame: np.ndarray, index: int) -> np.ndarray:
    """Stored values -> modality units (HU for CT), per frame for enhanced multi-frame files."""
    from pydicom.pixels import apply_modality_lut

    group = _frame_group(ds, index, "PixelValueTransformationSequence")
    if group is not None and "RescaleSlope" in group:
        return frame.astype(np.float32) * float(group.RescaleSlope) + float(group.get("RescaleIntercept", 0.0))
    try:
        return np.asarray(apply_modality_lut(frame, ds), dtype=np.float32)
    except Exception:  # a malformed LUT: fall back to the stored values
        return frame.astype(np.float32)


def _file_window(ds: Any, index: int) -> tuple[float, float] | None:
    source = _frame_group(ds, index, "FrameVOILUTSequence") or ds
    try:
        centre, width = source.get("WindowCenter"), source.get("WindowWidth")
        if centre is None or width is None:
            return None
        centre = centre[0] if _is_multi(centre) else centre
        width = width[0] if _is_multi(width) else width
        return float(centre), float(width)
    except (TypeError, ValueError, IndexError):
        return None


def _frame_group(ds: Any, index: int, sequence: str) -> Any:
    """An item of a functional group (enhanced multi-frame): per-frame first, then shared."""
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        try:
            item = ds.get(groups)[i]
            seq = item.get(sequence)
            if seq:
                return seq[0]
        except (TypeError, IndexError, AttributeError, KeyError):
            continue
    return None


def _slice_position(ds: Any, index: int) -> float | None:
    """Position of the frame along its normal (mm): what orders slices of a series."""
    plane = _frame_group(ds, index, "PlanePositionSequence")
    position = (plane or ds).get("ImagePositionPatient") if (plane or ds) is not None else None
    orient_item = _frame_group(ds, index, "PlaneOrientationSequence") or ds
    orientation = orient_item.get("ImageOrientationPatient")
    try:
        if position is not None and orientation is not None and len(orientation) == 6:
            row, col = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
            normal = np.cross(row, col)
            return round(float(np.dot(normal, np.asarray(position, float))), 3)
        if position is not None:
            return round(float(position[2]), 3)
        if "SliceLocation" in ds:
            return round(float(ds.SliceLocation), 3)
    except (TypeError, ValueError, IndexError):
        return None
    return None


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    top = float(arr.max()) if arr.size else 0.0
    scale = 255.0 / top if top > 255 else 1.0
    return np.clip(arr.astype(np.float32) * scale, 0, 255).astype(np.uint8)


def _int(ds: Any, keyword: str) -> int:
    try:
        return int(ds.get(keyword) or 0)
    except (TypeError, ValueError):
        return 0


def _is_multi(v: Any) -> bool:
    return isinstance(v, (list, tuple)) or type(v).__name__ == "MultiValue"


def _sop_name(ds: Any) -> str:
    sop = ds.get("SOPClassUID")
    return str(getattr(sop, "name", sop)) if sop else ""

