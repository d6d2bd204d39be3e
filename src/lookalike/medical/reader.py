"""One entry point for scan files: which files are scans, and their frames."""

from __future__ import annotations

import os

from ..errors import ImageLoadError
from ..imaging import is_image_name
from .dicom import DICOM_EXTENSIONS, has_preamble, read_dicom
from .frames import ScanFrame
from .nifti import is_nifti_name, read_nifti
from .window import Window


def is_scan_name(path: str | os.PathLike) -> bool:
    """By name alone: `.dcm`/`.dicom`/`.dic`, `.nii`, `.nii.gz`."""
    name = os.fsdecode(path).lower()
    return os.path.splitext(name)[1] in DICOM_EXTENSIONS or is_nifti_name(name)


def sniff_dicom(path: str | os.PathLike) -> bool:
    """A file without a DICOM extension that is DICOM by content (PACS exports are often
    named IM0001 or by UID). Reads 132 bytes."""
    try:
        with open(path, "rb") as f:
            return has_preamble(f.read(132))
    except OSError:
        return False


def is_scan(path: str | os.PathLike, head: bytes | None = None) -> bool:
    """By name, else (for names that are not a known image type) by the DICM preamble."""
    if is_scan_name(path):
        return True
    if is_image_name(path):
        return False
    return has_preamble(head) if head is not None else sniff_dicom(path)


def read_scan(data: bytes, name: str, window: Window | None = None, keep_phi: bool = False) -> list[ScanFrame]:
    """Every picture of a DICOM file or NIfTI volume, windowed, with de-identified fields."""
    if not data:
        raise ImageLoadError(name, "empty file")
    window = window or Window()
    if is_nifti_name(name):
        return read_nifti(data, name, window)
    return read_dicom(data, name, window, keep_phi)
