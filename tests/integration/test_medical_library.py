"""Scans in a real library: indexing folders of DICOM and NIfTI (frames and slices as entries,
incremental, bad files reported), de-identification on disk, series grouping, series queries
and the `lookalike scans` commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike import Library  # noqa: E402
from lookalike.engine.series import configure_scans, scan_settings, search_by_series, search_grouped  # noqa: E402
from lookalike.errors import Conflict, InvalidQuery, NotFound  # noqa: E402
from lookalike.medical.nifti import slice_height  # noqa: E402
from tests.support.medical import (
    CH2,
    CH2BET,
    PHI_NEEDLES,
    PLANTED,
    ch2_dicom_series,
    ch2_volume,
    copy_dicom_testfiles,
    dicom_testfile,
    grep_tree,
    need_mricron,
)


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> Path:
    """A folder as a PACS export leaves it: good files, one without extension, and bad ones."""
    need_mricron()
    root = tmp_path_factory.mktemp("scans")
    copy_dicom_testfiles(["CT_small.dcm", "SC_rgb_2frame.dcm", "reportsi.dcm", "MR_truncated.dcm"], root / "misc")
    shutil.copy(dicom_testfile("MR_small.dcm"), root / "misc" / "IM0001")
    (root / "misc" / "fake.dcm").write_text("not a scan\n")
    shutil.copy(CH2BET, root / "ch2bet.nii.gz")
    ch2_dicom_series(root / "series", range(30, 160, 10))  # 13 slices, 10 mm apart
    return root


@pytest.fixture(scope="module")
def scan_library(tmp_path_factory, scans) -> Path:
    lib_dir = tmp_path_factory.mktemp("scan-lib")
    with Library.open(lib_dir) as lib:
        report = lib.add([scans])
        assert report.embedded == 1 + 1 + 2 + 181 + 13
    return lib_dir


def test_folder_of_scans_is_indexed_entry_by_entry(scan_library, scans):
    with Library.open(scan_library) as lib:
        paths = {r.path for r in lib.records()}
        assert len(paths) == 198
        assert f"{scans}/misc/SC_rgb_2frame.dcm#frame=1" in paths and f"{scans}/misc/CT_small.dcm" in paths
        assert f"{scans}/misc/IM0001" in paths  # DICOM by its preamble
        assert f"{scans}/ch2bet.nii.gz#slice=180" in paths
        again = lib.add([scans])
        assert again.embedded == 0 and again.unchanged == 17 and len(again.failed) == 3
        reasons = {Path(p).name: r for p, r in again.failed}
        assert reasons == {"fake.dcm": "not a DICOM file (no DICM preamble and no DICOM elements)",
                           "reportsi.dcm": "no pixel data (Basic Text SR Storage: not an image)",
                           "MR_truncated.dcm": "truncated pixel data"}


def test_fields_of_entries(scan_library, scans):
    with Library.open(scan_library) as lib:
        by_path = {r.path: r for r in lib.records()}
        ct = by_path[f"{scans}/misc/CT_small.dcm"].fields
        assert ct["modality"] == "CT" and ct["format"] == "dicom" and ct["window"] == "40,400 (soft)"
        nii = by_path[f"{scans}/ch2bet.nii.gz#slice=100"].fields
        assert nii["slice"] == 100 and nii["format"] == "nifti" and isinstance(nii["slice_position"], float)
        series = [r.fields for p, r in by_path.items() if p.startswith(f"{scans}/series/")]
        assert len({f["series_uid"] for f in series}) == 1 and {f["body_part"] for f in series} == {"HEAD"}
        assert sorted(f["slice_position"] for f in series) == sorted({f["slice_position"] for f in series})


def test_query_a_frame_of_an_indexed_file_uses_its_vector(scan_library, scans):
    with Library.open(scan_library) as lib:
        frame0 = f"{scans}/misc/SC_rgb_2frame.dcm#frame=0"
        hits = lib.search(frame0, k=len(lib))
        assert frame0 not in {h.path for h in hits}  # the stored entry answered, and excluded itself
        assert hits[0].path == f"{scans}/misc/SC_rgb_2frame.dcm#frame=1"
        with pytest.raises(Exception, match="no #frame=7"):
            lib.search(f"{scans}/misc/SC_rgb_2frame.dcm#frame=7")


def test_group_series_gives_the_best_slice_per_series(scan_library):
    with Library.open(scan_library) as lib:
        query = f"{CH2}#slice=95"  # the same brain with its skull, not indexed: decoded as a slice
        hits = search_grouped(lib, query, k=5)
        assert len({h.series for h in hits}) == len(hits)
        top = hits[0]
        assert top.fields["series_description"] == "T1 Colin27 axial" and top.entries > 1
        volume, affine = ch2_volume()
        query_height = slice_height(affine, volume.shape, 95)
        assert abs(top.fields["slice_position"] - query_height) <= 10
        plain = lib.search(query, k=1)[0]
        assert plain.path == top.best_path  # the best image is the best slice of the best series


def test_a_series_as_the_query(scan_library, tmp_path):
    query_dir = ch2_dicom_series(tmp_path / "q", range(55, 135, 20))[0].parent  # another export, 4 slices
    with Library.open(scan_library) as lib:
        n, hits = search_by_series(lib, str(query_dir), k=4)
        assert n == 4
        assert hits[0].fields.get("series_description") == "T1 Colin27 axial"
        uid = hits[0].series
        n_uid, by_uid = search_by_series(lib, uid, k=3)  # an indexed series by UID: itself left out
        assert n_uid == 13 and uid not in {h.series for h in by_uid}
        with pytest.raises(NotFound):
            search_by_series(lib, "1.2.3.4.5.6", k=3)


def test_window_per_library_and_per_query(tmp_path):
    ct = dicom_testfile("CT_small.dcm")
    with Library.open(tmp_path / "lib") as lib:
        configure_scans(lib, window="lung")
        lib.add([ct])
        assert scan_settings(lib)["window"] == "lung"
        rec = lib.records()[0]
        assert rec.fields["window"] == "-600,1500 (lung)"
        with pytest.raises(Conflict):
            configure_scans(lib, window="brain")  # indexed scans would mix two renderings
        with pytest.raises(Conflict):
            configure_scans(lib, keep_phi=True)  # opt-in only when the library is created
        same = lib.search(str(ct), k=1)  # the library's window: the stored vector, itself excluded
        assert same == []
        brain = search_grouped(lib, str(ct), k=1, window="brain")  # another window: a new picture
        assert brain[0].score < 0.999
        with pytest.raises(InvalidQuery):
            search_grouped(lib, str(ct), k=1, window="40,-1")


def test_patient_identifiers_never_reach_the_library(tmp_path):
    need_mricron()
    ch2_dicom_series(tmp_path / "phi", range(60, 130, 10), **PLANTED)
    needles = PHI_NEEDLES
    lib_dir = tmp_path / "lib"
    cli = [sys.executable, "-m", "lookalike", "scans"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(cli + ["index", str(tmp_path / "phi"), "-l", str(lib_dir), "--json"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    query = subprocess.run(cli + ["search", str(tmp_path / "phi" / "IM0080"), "-l", str(lib_dir), "--group", "series", "--json"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout)["results"][0]["fields"]["series_description"] == "T1 Colin27 axial"
    assert grep_tree(lib_dir, needles) == []
    assert not [n for n in needles if n in run.stdout + run.stderr + query.stdout + query.stderr]
    # The same files in a library created with the opt-in do keep them: the grep above can fail.
    with Library.open(tmp_path / "identified") as lib:
        configure_scans(lib, keep_phi=True)
        lib.add([tmp_path / "phi"])
        assert lib.records()[0].fields["patient_id"] == "PID-93817264"
    assert grep_tree(tmp_path / "identified", ["PID-93817264"])


def test_removing_and_pruning_a_multi_entry_file(tmp_path):
    need_mricron()
    folder = tmp_path / "data"
    copy_dicom_testfiles(["SC_rgb_2frame.dcm", "CT_small.dcm"], folder)
    with Library.open(tmp_path / "lib") as lib:
        lib.add([folder])
        assert len(lib) == 3
        assert lib.remove([folder / "SC_rgb_2frame.dcm"]) == 2 and len(lib) == 1
        lib.add([folder])
        (folder / "SC_rgb_2frame.dcm").unlink()
        report = lib.add([folder], prune=True)
        assert report.removed == 2 and [Path(r.path).name for r in lib.records()] == ["CT_small.dcm"]


def test_cli_scans_search_table(scan_library, scans):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    run = subprocess.run([sys.executable, "-m", "lookalike", "scans", "search", f"{CH2}#slice=95", "-l", str(scan_library),
                          "--group", "series", "-k", "3"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "T1 Colin27 axial" in run.stdout and "mm" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "lookalike", "scans", "search", str(scans / "misc" / "fake.dcm"), "-l",
                          str(scan_library)], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "not a DICOM file" in bad.stderr


def test_scans_on_milvus_lite(tmp_path):
    """The same scan entries, fields, series grouping and de-identification on Milvus."""
    pytest.importorskip("milvus_lite")
    need_mricron()
    ch2_dicom_series(tmp_path / "data" / "series", range(50, 130, 20), **PLANTED)
    copy_dicom_testfiles(["SC_rgb_2frame.dcm"], tmp_path / "data")
    spec = f"milvus:{tmp_path / 'lib.db'}"
    with Library.open(tmp_path / "lib", store=spec) as lib:
        report = lib.add([tmp_path / "data"])
        assert report.embedded == 4 + 2 and len(lib) == 6
        hits = search_grouped(lib, f"{CH2}#slice=90", k=3)
        assert hits[0].fields["series_description"] == "T1 Colin27 axial" and hits[0].entries == 4
        flt = lib.where('modality = "MR" and slice_position > 0')
        assert {r.fields["instance_number"] for r in lib.store.iter_records(where=flt)} == {90, 110}
        assert lib.remove([tmp_path / "data" / "SC_rgb_2frame.dcm"]) == 2 and len(lib) == 4
    needles = PHI_NEEDLES
    assert grep_tree(tmp_path / "lib.db", needles) == [] and grep_tree(tmp_path / "lib", needles) == []


def test_plain_search_groups_by_series(scan_library):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-m", "lookalike", "search", f"{CH2}#slice=95", "-l", str(scan_library),
                          "--group", "series", "-k", "3", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len({r["series"] for r in results}) == 3 and results[0]["fields"]["series_description"] == "T1 Colin27 axial"
    bad = subprocess.run([sys.executable, "-m", "lookalike", "search", "a.dcm", "b.dcm", "-l", str(scan_library), "--group", "series"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "--group" in bad.stderr
