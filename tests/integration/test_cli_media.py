"""`lookalike index` and `search` on a folder with photos, a video and files it does not use:
the summary names the video's frames and counts unused files by extension; a search result
names the video and the moment."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.cli import run as run_cli
from tests.support.media import exif_block, write_heic, write_jpeg, write_mp4


def run(*args: object) -> subprocess.CompletedProcess:
    r = run_cli(*args)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())


def test_index_summary_and_search_names_the_moment(tmp_path, photos):
    folder = tmp_path / "album"
    folder.mkdir()
    write_mp4(folder / "holiday.mp4", [photos["astronaut"], photos["coffee"], photos["rocket"]], 3.0)
    write_heic(folder / "cat.heic", photos["chelsea"], exif_block(taken="2020:01:02 03:04:05", model="iPhone 12"))
    for name in ("a.xyz", "b.xyz", "c.psd"):
        (folder / name).write_bytes(b"\0" * 10)
    lib = tmp_path / "lib"
    r = run("index", folder, "--library", lib)
    assert r.returncode == 0, r.stderr
    assert "videos: 1 indexed as 3 frames" in r.stderr
    assert "skipped 3 files of unsupported types: .xyz (2), .psd (1)" in r.stderr
    query = tmp_path / "q.jpg"
    write_jpeg(query, photos["rocket"])
    r = run("search", query, "--library", lib, "-k", "1", "--json")
    assert r.returncode == 0, r.stderr
    hit = json.loads(r.stdout)["results"][0]
    assert hit["path"] == f"{folder / 'holiday.mp4'}#t=6.000"
    r = run("index", folder, "--library", lib, "--json")
    report = json.loads(r.stdout)
    assert report["unchanged"] == 2 and report["embedded"] == 0 and report["skipped_types"] == {".xyz": 2, ".psd": 1}


def test_dates_and_where_use_capture_time_and_camera(tmp_path, photos):
    folder = tmp_path / "shots"
    folder.mkdir()
    # Copied from a backup today: file times say nothing; EXIF says when each was taken.
    write_jpeg(folder / "rocket.jpg", photos["rocket"], exif_block(taken="2019:07:16 13:32:00", model="iPhone 12"))
    write_heic(folder / "cat.heic", photos["chelsea"], exif_block(taken="2021:05:01 09:00:00", offset="-07:00", model="Pixel 5"))
    write_jpeg(folder / "coffee.jpg", photos["coffee"])  # no EXIF: its file time (now) counts
    lib = tmp_path / "lib"
    assert run("index", folder, "--library", lib).returncode == 0
    query = tmp_path / "q.jpg"
    write_jpeg(query, photos["astronaut"])

    def names(*options) -> list[str]:
        r = run("search", query, "--library", lib, "-k", "10", "--json", *options)
        assert r.returncode == 0, r.stderr
        return sorted(os.path.basename(h["path"]) for h in json.loads(r.stdout)["results"])

    assert names("--until", "2019-07-16") == ["rocket.jpg"]  # the whole day of the capture
    assert names("--since", "2019-07-17", "--until", "2021-05-01T09:00") == ["cat.heic"]  # the camera's clock
    assert names("--since", "2021-05-02") == ["coffee.jpg"]
    assert names("--where", 'camera = "iPhone 12"') == ["rocket.jpg"]
    assert names("--where", 'taken < "2020-01-01" or camera = "Pixel 5"') == ["cat.heic", "rocket.jpg"]
    r = run("search", query, "--library", lib, "-k", "1", "--json", "--where", 'camera = "Pixel 5"')
    fields = json.loads(r.stdout)["results"][0]["fields"]
    assert (fields["taken"], fields["date"], fields["media"]) == ("2021-05-01T09:00:00-07:00", "2021-05-01T09:00:00", "image")
