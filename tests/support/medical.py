"""Real scan data for the medical tests: pydicom's bundled test files (and pydicom-data's),
the Colin27 template of Debian's mricron-data, and DICOM files written here with pydicom from
those real pixels. Nothing is downloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

MRICRON = Path("/usr/share/mricron/templates")
CH2 = MRICRON / "ch2.nii.gz"
CH2BET = MRICRON / "ch2bet.nii.gz"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# Identifiers planted in test files: none may be found in a library created without opt-in.
PLANTED = {"PatientName": "Quixotl^Brambleworth", "PatientID": "PID-93817264", "PatientBirthDate": "19230405",
           "PatientAddress": "42 Wuthering Lane, Zembla", "AccessionNumber": "ACC55501234",
           "InstitutionName": "Saint Quimby Infirmary", "ReferringPhysicianName": "Dr^Vexworthy",
           "OtherPatientIDs": "OPID-7733441"}
# Distinctive parts of those values (not words an ImageNet tag or a path could contain).
PHI_NEEDLES = ["Quixotl", "Brambleworth", "PID-93817264", "19230405", "1923-04-05", "Wuthering", "Zembla",
               "ACC55501234", "Quimby", "Vexworthy", "OPID-7733441"]


def dicom_testfile(name: str) -> Path:
    """A file bundled with pydicom (or pydicom-data); never fetched from the network."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


def copy_dicom_testfiles(names: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(dicom_testfile(n), folder / n)) for n in names]


def need_mricron() -> None:
    if not CH2.exists():
        pytest.skip("Debian mricron-data is not installed (apt-get install mricron-data)")


def write_dicom(path: Path, pixels: np.ndarray, *, sop_class: str = MR_IMAGE_STORAGE, modality: str = "MR",
                series_uid: str | None = None, study_uid: str | None = None, position: float | None = None,
                photometric: str = "MONOCHROME2", **tags) -> Path:
    """A valid Part 10 file (with preamble) holding `pixels` (uint8/uint16/int16, HxW)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = ds.BitsStored = 8 if pixels.dtype == np.uint8 else 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if position is not None:
        ds.ImagePositionPatient = [0.0, 0.0, float(position)]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    for key, value in tags.items():
        setattr(ds, key, value)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def ch2_volume() -> tuple[np.ndarray, np.ndarray]:
    from lookalike.medical.nifti import load_volume

    need_mricron()
    return load_volume(CH2.read_bytes(), str(CH2))


def ch2_dicom_series(folder: Path, slices: range, **tags) -> list[Path]:
    """Axial slices of the real Colin27 template written as one MR series (uint16, z in mm)."""
    from lookalike.medical.nifti import axial_slice, slice_height

    volume, affine = ch2_volume()
    folder.mkdir(parents=True, exist_ok=True)
    series, study = generate_uid(), generate_uid()
    out = []
    for k in slices:
        pixels = axial_slice(volume, k).astype(np.uint16)
        out.append(write_dicom(folder / f"IM{k:04d}", pixels, series_uid=series, study_uid=study,
                               position=slice_height(affine, volume.shape, k), InstanceNumber=k,
                               SeriesDescription="T1 Colin27 axial", BodyPartExamined="HEAD", **tags))
    return out


def grep_tree(root: Path, needles: list[str]) -> list[str]:
    """Every needle found in any file under `root` (as UTF-8 or UTF-16 bytes), "needle in file"."""
    found = []
    for p in root.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            found += [f"{n} in {p.name}" for n in needles if n.encode() in data or n.encode("utf-16-le") in data]
    return found
