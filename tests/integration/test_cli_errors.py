"""The CLI's error paths end to end: real library, real model, real subprocesses. Every user
error is one line and an exit code from the table in cli/app.py, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lookalike.demo.samples import save_jpeg

CLI = [sys.executable, "-m", "lookalike"]


def run(*args: object) -> subprocess.CompletedProcess:
    # Wide enough that Rich tables never truncate a path.
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, timeout=300, env={**os.environ, "COLUMNS": "400"})


@pytest.fixture(scope="module")
def lib(tmp_path_factory, photos):
    """A library whose only images have Rich markup in their names."""
    root = tmp_path_factory.mktemp("cli-errors")
    save_jpeg(photos["chelsea"], root / "pics" / "m[/bold]x.jpg")
    save_jpeg(photos["coffee"], root / "pics" / "[red]coffee[/red].jpg")
    proc = run("index", root / "pics", "--library", root / "lib")
    assert proc.returncode == 0, proc.stderr.decode()
    return root


def assert_one_line(proc: subprocess.CompletedProcess, code: int, needle: bytes) -> None:
    assert proc.returncode == code, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
    assert needle in proc.stderr, proc.stderr.decode()
    assert proc.stderr.decode().strip().count("\n") == 0


@pytest.mark.parametrize("option, value", [("--until", "9999-12-31"), ("--since", "0001-01-01"),
                                           ("--until", "9999-12-31T23:59"), ("--since", "not-a-date")])
def test_extreme_or_bad_dates_are_usage_errors(lib, option, value):
    proc = run("search", "--text", "cat", option, value, "--library", lib / "lib")
    if proc.returncode == 0:  # a date the platform can represent: an ordinary (maybe empty) result
        return
    assert proc.returncode == 2 and option.encode() in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr.decode()


def test_far_future_until_is_never_a_traceback(lib):
    for option, value in (("--until", "9999-12-31"), ("--since", "0001-01-01")):
        proc = run("search", "--text", "cat", option, value, "--library", lib / "lib", "--json")
        assert proc.returncode in (0, 2) and b"Traceback" not in proc.stderr, proc.stderr.decode()


def test_unknown_label_is_one_line(lib):
    assert_one_line(run("search", "--text", "qwxzv", "--library", lib / "lib"), 1, b"is not a word Lookalike can search for")


def test_unknown_id_is_a_user_error(lib):
    assert_one_line(run("search", "id:424242", "--library", lib / "lib"), 1, b"no image with id 424242")


@pytest.mark.parametrize("args, needle", [(["search", "id:1", "--min-score", "nan"], b"--min-score"),
                                         (["search", "id:1", "--min-score", "inf"], b"--min-score"),
                                         (["duplicates", "--tier", "nope"], b"'nope' is not one of")])
def test_bad_option_values_are_usage_errors(lib, args, needle):
    proc = run(*args, "--library", lib / "lib")
    assert proc.returncode == 2 and needle in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr.decode()


def test_markup_in_file_names_is_printed_verbatim(lib):
    query = lib / "pics" / "m[/bold]x.jpg"
    proc = run("search", query, "--library", lib / "lib")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert "[red]coffee[/red].jpg" in out and "m[/bold]x.jpg" in out
    hits = json.loads(run("search", query, "--library", lib / "lib", "--json").stdout)["results"]
    assert [h["path"].endswith("/[red]coffee[/red].jpg") for h in hits] == [True]  # "/" makes "[red]coffee[" a folder
    dup = run("duplicates", "--library", lib / "lib", "--similar-cosine", "-1")
    assert dup.returncode == 0 and "m[/bold]x.jpg" in dup.stdout.decode(), dup.stderr.decode()


def test_version_and_short_help():
    from lookalike import __version__

    version = run("--version")
    assert version.returncode == 0 and version.stdout.decode().strip() == f"lookalike {__version__}"
    for args in (["-h"], ["search", "-h"]):
        proc = run(*args)
        assert proc.returncode == 0 and b"Usage" in proc.stdout


def test_markup_in_a_library_path_is_printed_verbatim(lib):
    odd = lib / "lib[/red]"
    assert run("index", lib / "pics", "--library", odd).returncode == 0
    info = run("info", "--library", odd)
    assert info.returncode == 0 and str(odd) in info.stdout.decode(), info.stderr.decode()
    missing = run("info", "--library", lib / "nope[/bold]")
    assert_one_line(missing, 1, f"no library at {lib / 'nope[/bold]'}".encode())
