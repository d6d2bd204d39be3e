"""A real PACS as a source: Orthanc started by the test, indexed over DICOMweb (QIDO-RS listing,
WADO-RS fetching), incrementally, with credentials from the environment, results linking back
to the PACS, no identifiers stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lookalike import Library  # noqa: E402
from lookalike.engine.series import search_grouped  # noqa: E402
from tests.support.medical import CH2, PHI_NEEDLES, PLANTED, ch2_dicom_series, copy_dicom_testfiles, grep_tree, need_mricron
from tests.support.orthanc import PASSWORD, USER, start_orthanc


@pytest.fixture
def orthanc(tmp_path):
    yield from start_orthanc(tmp_path / "orthanc")


def cli(*args: str, auth: str | None = f"{USER}:{PASSWORD}") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    env.pop("LOOKALIKE_DICOMWEB_AUTH", None)
    if auth is not None:
        env["LOOKALIKE_DICOMWEB_AUTH"] = auth
    return subprocess.run([sys.executable, "-m", "lookalike", *args], capture_output=True, text=True, env=env, timeout=300)


def test_index_and_search_an_orthanc_server(orthanc, tmp_path):
    need_mricron()
    series = ch2_dicom_series(tmp_path / "export" / "series", range(60, 140, 20), **PLANTED)
    others = copy_dicom_testfiles(["CT_small.dcm", "SC_rgb_2frame.dcm", "MR_small_jp2klossless.dcm", "reportsi.dcm"],
                                  tmp_path / "export")
    ids = {p.name: orthanc.upload(p) for p in series + others}
    lib_dir = tmp_path / "lib"

    first = cli("scans", "index", orthanc.dicomweb, "-l", str(lib_dir), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["added"] == 7 and report["embedded"] == 4 + 1 + 2 + 1
    assert [f["reason"] for f in report["failed"]] == ["no pixel data (Basic Text SR Storage: not an image)"]
    assert report["failed"][0]["path"].startswith(orthanc.dicomweb + "/studies/")

    again = json.loads(cli("scans", "index", orthanc.dicomweb, "-l", str(lib_dir), "--json").stdout)
    assert again["embedded"] == 0 and again["unchanged"] == 7  # indexed instances are not fetched again

    orthanc.upload(ch2_dicom_series(tmp_path / "more", range(100, 101))[0])  # new UIDs: a new instance
    third = json.loads(cli("scans", "index", orthanc.dicomweb, "-l", str(lib_dir), "--json").stdout)
    assert third["added"] == 1 and third["embedded"] == 1 and third["unchanged"] == 7

    with Library.open(lib_dir) as lib:
        hits = lib.search(str(tmp_path / "export" / "CT_small.dcm"), k=1)
        rec = lib.get(hits[0].id)
        assert rec.path.startswith(f"{orthanc.dicomweb}/studies/{rec.fields['study_uid']}/series/{rec.fields['series_uid']}/")
        assert hits[0].score > 0.999  # the same pixels, fetched from the PACS
        grouped = search_grouped(lib, f"{CH2}#slice=100", k=2)
        assert grouped[0].fields["series_description"] == "T1 Colin27 axial" and grouped[0].entries == 4
        by_entry = lib.search(grouped[0].best_path, k=1)  # an entry of the PACS as a query
        assert by_entry[0].path != grouped[0].best_path
        assert any(r.path.endswith("#frame=1") for r in lib.records())

    needles = PHI_NEEDLES
    assert grep_tree(lib_dir, needles) == []

    orthanc.delete(ids["CT_small.dcm"])
    pruned = json.loads(cli("scans", "index", orthanc.dicomweb, "-l", str(lib_dir), "--prune", "--json").stdout)
    assert pruned["removed"] == 1 and pruned["embedded"] == 0


def test_credentials_come_from_the_environment(orthanc, tmp_path):
    bad = cli("scans", "index", orthanc.dicomweb, "-l", str(tmp_path / "lib"), auth="lookalike:wrong")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "HTTP 401" in bad.stderr
    none = cli("scans", "index", orthanc.dicomweb, "-l", str(tmp_path / "lib"), auth=None)
    assert none.returncode == 1 and "HTTP 401" in none.stderr
    in_url = orthanc.dicomweb.replace("http://", f"http://{USER}:{PASSWORD}@")
    refused = cli("scans", "index", in_url, "-l", str(tmp_path / "lib"))
    assert refused.returncode != 0 and "LOOKALIKE_DICOMWEB_AUTH" in refused.stderr and PASSWORD not in refused.stderr
