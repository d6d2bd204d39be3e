"""Reading DICOM and NIfTI: the right pixels (modality LUT, window, photometric), the right
frames, de-identified fields, and one clear reason for every file that cannot be read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import ImageLoadError, InvalidQuery  # noqa: E402
from lookalike.medical.fields import dicom_fields  # noqa: E402
from lookalike.medical.reader import is_scan, read_scan  # noqa: E402
from lookalike.medical.window import CT_PRESETS, parse_window  # noqa: E402
from tests.support.medical import (
    CH2,
    CT_IMAGE_STORAGE,
    PLANTED,
    dicom_testfile,
    need_mricron,
    pydicom,
    write_dicom,
)


def read(path: Path, window: str | None = None, keep_phi: bool = False):
    return read_scan(path.read_bytes(), str(path), parse_window(window), keep_phi)


def grey(frame) -> np.ndarray:
    return np.asarray(frame.image)[:, :, 0].astype(int)


def test_ct_modality_lut_then_window():
    path = dicom_testfile("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = pydicom.pixels.apply_modality_lut(ds.pixel_array, ds).astype(float)
    assert ds.RescaleIntercept != 0 and hu.min() < 0  # signed, rescaled: the LUT matters here
    for preset, (c, w) in CT_PRESETS.items():
        expected = np.clip((hu - (c - w / 2)) * 255.0 / w, 0, 255).astype(np.uint8)
        (frame,) = read(path, preset)
        assert np.abs(grey(frame) - expected).max() <= 1, preset
        assert frame.fields["window"] == f"{c:g},{w:g} ({preset})"
    # no window in this file: auto is the CT soft-tissue default; an explicit C,W is obeyed
    assert read(path)[0].fields["window"] == "40,400 (soft)"
    assert read(path, "100,50")[0].fields["window"] == "100,50 (explicit)"
    assert not np.array_equal(grey(read(path, "brain")[0]), grey(read(path, "lung")[0]))


def test_auto_window_uses_the_files_window_else_percentiles():
    assert read(dicom_testfile("MR_small.dcm"))[0].fields["window"] == "600,1600 (file)"
    assert read(dicom_testfile("JPEG2000_UNC.dcm"))[0].fields["window"].endswith("(percentiles)")


@pytest.mark.parametrize("text", ["", "wide", "40", "40,0", "40,-3", "nan,40", "a,b", "1,2,3"])
def test_bad_window_specs_are_invalid_queries(text):
    if text == "":
        assert parse_window(text).spec == "auto"
        return
    with pytest.raises(InvalidQuery):
        parse_window(text)


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(dicom_testfile("MR_small.dcm"))
    pixels = ds.pixel_array
    a = write_dicom(tmp_path / "m2.dcm", pixels, photometric="MONOCHROME2", WindowCenter=600, WindowWidth=1600)
    b = write_dicom(tmp_path / "m1.dcm", pixels, photometric="MONOCHROME1", WindowCenter=600, WindowWidth=1600)
    assert np.array_equal(grey(read(b)[0]), 255 - grey(read(a)[0]))
    # the real MONOCHROME1 radiograph: bone (high stored values) comes out dark->bright inverted
    (cr,) = read(dicom_testfile("RG3_UNCR.dcm"))
    raw = pydicom.dcmread(dicom_testfile("RG3_UNCR.dcm")).pixel_array
    hi, lo = raw >= np.percentile(raw, 99), raw <= np.percentile(raw, 1)
    assert grey(cr)[hi].mean() < grey(cr)[lo].mean()


def test_8_and_16_bit_unsigned_and_signed(tmp_path):
    ramp = np.tile(np.arange(64), (32, 1))
    for dtype, scale in ((np.uint8, 4), (np.uint16, 1000), (np.int16, -500)):
        path = write_dicom(tmp_path / f"{np.dtype(dtype).name}.dcm", (ramp * scale).astype(dtype))
        (frame,) = read(path)
        g = grey(frame)[0]
        steps = np.diff(g)
        assert (steps >= 0).all() or (steps <= 0).all(), dtype  # monotonic: no wrap-around of signed values
        assert g.max() - g.min() > 200


def test_rgb_and_ybr_give_the_same_picture():
    rgb = np.asarray(read(dicom_testfile("SC_rgb.dcm"))[0].image, int)
    ybr = np.asarray(read(dicom_testfile("SC_ybr_full_uncompressed.dcm"))[0].image, int)
    assert rgb.shape == ybr.shape == (100, 100, 3)
    assert np.abs(rgb - ybr).mean() < 3  # YCbCr round-trip rounding only
    assert read(dicom_testfile("SC_rgb.dcm"))[0].fields["window"] == "colour"


def test_multi_frame_files_give_one_entry_per_frame():
    frames = read(dicom_testfile("SC_rgb_2frame.dcm"))
    assert [f.fragment for f in frames] == ["frame=0", "frame=1"]
    assert [f.fields["frame"] for f in frames] == [0, 1]
    us = read(dicom_testfile("OBXXXX1A_rle_2frame.dcm"))  # palette colour, RLE
    assert len(us) == 2 and us[0].fields["window"] == "palette"
    assert read(dicom_testfile("CT_small.dcm"))[0].fragment is None  # a single frame is the file itself


def test_enhanced_multi_frame():
    frames = read(dicom_testfile("emri_small.dcm"))
    assert len(frames) == 10 and frames[0].fields["sop_class"] == "Enhanced MR Image Storage"
    ct = read(dicom_testfile("eCT_Supplemental.dcm"))
    assert len(ct) == 2 and all(f.fields["window"].endswith("(file)") for f in ct)  # per-frame VOI


def test_compressed_transfer_syntaxes_decode_to_the_same_pixels():
    base = grey(read(dicom_testfile("MR_small.dcm"))[0])
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"):
        assert np.array_equal(grey(read(dicom_testfile(name))[0]), base), name


def test_dicom_recognised_by_preamble_without_extension(tmp_path):
    target = tmp_path / "IM0001"
    target.write_bytes(dicom_testfile("MR_small.dcm").read_bytes())
    assert is_scan(target)
    (tmp_path / "notes").write_text("not a scan")
    assert not is_scan(tmp_path / "notes")
    from lookalike.engine.scan import scan

    entries, failed = scan([tmp_path])
    assert [Path(e.path).name for e in entries] == ["IM0001"] and failed == []


def test_fields_are_whitelisted_and_phi_needs_opt_in(tmp_path):
    pixels = pydicom.dcmread(dicom_testfile("CT_small.dcm")).pixel_array
    path = write_dicom(tmp_path / "phi.dcm", pixels, sop_class=CT_IMAGE_STORAGE, modality="CT", position=-12.5,
                       StudyDate="20240131", StudyDescription="CT HEAD", SeriesDescription="Brambleworth follow-up",
                       Manufacturer="ACME", ManufacturerModelName="Scanner 9", SliceThickness="2.5", PixelSpacing=[0.7, 0.7],
                       BodyPartExamined="HEAD", **PLANTED)
    (frame,) = read(path)
    f = frame.fields
    assert f["modality"] == "CT" and f["study_date"] == "2024-01-31" and f["slice_position"] == -12.5
    assert f["manufacturer"] == "ACME" and f["model"] == "Scanner 9" and f["body_part"] == "HEAD"
    assert f["slice_thickness"] == 2.5 and f["pixel_spacing"] == 0.7 and f["rows"] == pixels.shape[0]
    assert f["series_uid"] and f["study_uid"] and f["sop_instance_uid"]
    assert "series_description" not in f  # it contains the patient's family name
    assert f["study_description"] == "CT HEAD"
    ds = pydicom.dcmread(path)
    ds.StudyDescription = "CT HEAD acc55501234"
    assert "study_description" not in dicom_fields(ds)  # nor an accession number
    text = repr(f)
    for value in PLANTED.values():
        assert value.split("^")[-1] not in text
    kept = read(path, keep_phi=True)[0].fields
    assert kept["patient_name"] == "Quixotl^Brambleworth" and kept["patient_id"] == "PID-93817264"
    assert kept["patient_birth_date"] == "1923-04-05" and kept["accession_number"] == "ACC55501234"
    assert set(dicom_fields(pydicom.dcmread(path))) == set(f) - {"window", "slice_position"}


def test_nifti_volume_is_axial_slices_with_heights():
    need_mricron()
    frames = read(CH2)
    assert len(frames) == 181 and frames[0].fragment == "slice=0"
    heights = [f.fields["slice_position"] for f in frames]
    assert np.all(np.diff(heights) > 0) and heights[0] < -50 < 50 < heights[-1]  # inferior -> superior, mm
    middle = frames[90]
    assert middle.image.size == (181, 217) and middle.fields["rows"] == 217 and middle.fields["format"] == "nifti"
    assert np.asarray(middle.image).std() > 20  # a brain, not a blank


# -- bad input: one reason each ------------------------------------------------------------

def reason(path: Path) -> str:
    with pytest.raises(ImageLoadError) as e:
        read(path)
    assert "\n" not in str(e.value)
    return e.value.reason


def test_not_dicom_with_a_dcm_name(tmp_path):
    (tmp_path / "x.dcm").write_text("patient notes, not an image\n" * 20)
    assert reason(tmp_path / "x.dcm").startswith("not a DICOM file")
    (tmp_path / "y.dcm").write_bytes(dicom_testfile("CT_small.dcm").read_bytes()[:100])
    assert "DICOM" in reason(tmp_path / "y.dcm")


def test_no_pixel_data_names_the_kind():
    assert reason(dicom_testfile("reportsi.dcm")) == "no pixel data (Basic Text SR Storage: not an image)"
    assert reason(dicom_testfile("rtstruct.dcm")) == "no pixel data (RT Structure Set Storage: not an image)"


def test_dicomdir_is_refused_with_a_reason():
    assert reason(dicom_testfile("DICOMDIR")).startswith("a DICOMDIR")


def test_unsupported_transfer_syntax_is_named(tmp_path):
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(dicom_testfile("MR_small.dcm"))
    ds.PixelData = encapsulate([ds.PixelData])  # as an MPEG2 file holds its stream
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    ds.save_as(tmp_path / "mpeg.dcm")
    assert reason(tmp_path / "mpeg.dcm") == "unsupported transfer syntax MPEG2 Main Profile / Main Level (1.2.840.10008.1.2.4.100)"


def test_truncated_pixel_data():
    assert reason(dicom_testfile("MR_truncated.dcm")) == "truncated pixel data"


def test_absurd_dimensions_and_frames(tmp_path):
    small = np.zeros((8, 8), np.uint16)
    path = write_dicom(tmp_path / "huge.dcm", small)
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 60000
    ds.save_as(tmp_path / "huge.dcm")
    assert reason(tmp_path / "huge.dcm").startswith("too large: 60000x60000 pixels")
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 8
    ds.NumberOfFrames = 10_000_000
    ds.save_as(tmp_path / "frames.dcm")
    assert reason(tmp_path / "frames.dcm").startswith("too many frames: 10,000,000")


# A Python without pylibjpeg-libjpeg: its module and its plugin entry points are gone.
_WITHOUT_LIBJPEG = """
import sys, importlib.metadata as md
sys.modules["libjpeg"] = None
_entry_points = md.entry_points
def entry_points(**kw):
    eps = _entry_points(**kw)
    return md.EntryPoints(e for e in eps if not e.value.startswith("libjpeg")) if kw else eps
md.entry_points = entry_points
"""


def test_missing_decoder_names_the_pip_package():
    """JPEG-LS (only pylibjpeg-libjpeg decodes it here) without its decoder installed: the reason
    names the pip package; other files still read."""
    code = _WITHOUT_LIBJPEG + (
        "from pathlib import Path\n"
        "from lookalike.errors import MissingExtra\n"
        "from lookalike.medical.reader import read_scan\n"
        f"p = Path({str(dicom_testfile('MR_small_jpeg_ls_lossless.dcm'))!r})\n"
        "try:\n    read_scan(p.read_bytes(), p.name)\nexcept MissingExtra as e:\n    print('MISSING', e)\n"
        f"print(len(read_scan(Path({str(dicom_testfile('MR_small.dcm'))!r}).read_bytes(), 'ok.dcm')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "MISSING MR_small_jpeg_ls_lossless.dcm: decoding JPEG-LS Lossless Image Compression " \
           "(pip package pylibjpeg-libjpeg)" in out.stdout and "lookalike[dicom]" in out.stdout
    assert out.stdout.strip().endswith("1")  # the uncompressed file still reads


def test_private_sop_class(tmp_path):
    """An unknown (private) SOP class: with pixels it is read; without, the reason names its UID."""
    pixels = pydicom.dcmread(dicom_testfile("MR_small.dcm")).pixel_array
    path = write_dicom(tmp_path / "private.dcm", pixels, sop_class="1.2.826.0.1.3680043.99.1", modality="OT")
    assert read(path)[0].fields["sop_class"] == "1.2.826.0.1.3680043.99.1"
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(tmp_path / "private-nopixels.dcm")
    assert reason(tmp_path / "private-nopixels.dcm") == "no pixel data (1.2.826.0.1.3680043.99.1: not an image)"


def test_file_without_transfer_syntax_reads_as_its_encoding():
    (frame,) = read(dicom_testfile("OT-PAL-8-face.dcm"))  # no (0002,0010) in its meta header
    assert frame.image.size == (640, 480) and frame.fields["window"] == "palette"
