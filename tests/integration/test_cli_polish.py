"""The command line's manners: missing paths are errors that create nothing, unknown paths
are named, counts are singular when they are one, an id query names its image, paths are
terminal hyperlinks and piped tables keep whole paths on one line."""

from __future__ import annotations

import pytest

from lookalike.demo.samples import save_jpeg
from tests.support.cli import run

LONG = "a-folder-with-a-rather-long-name-that-would-not-fit-an-eighty-column-table-" * 2


@pytest.fixture(scope="module")
def polish_lib(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("polish")
    for name in ("chelsea", "coffee", "rocket"):
        save_jpeg(photos[name], root / "pics" / LONG / f"{name}.jpg")
    proc = run("index", root / "pics", "-l", root / "lib")
    assert proc.returncode == 0, proc.stderr.decode()
    return root


def test_a_missing_path_is_an_error_and_creates_no_library(tmp_path, polish_lib):
    proc = run("index", tmp_path / "nonexistent", "-l", tmp_path / "lib")
    assert proc.returncode == 1 and b"nonexistent: no such file or directory" in proc.stderr
    assert b"Traceback" not in proc.stderr and not (tmp_path / "lib").exists()
    # cwd default library: nothing appears either
    proc = run("index", tmp_path / "nonexistent", env={"LOOKALIKE_LIBRARY": str(tmp_path / "default-lib")})
    assert proc.returncode == 1 and not (tmp_path / "default-lib").exists()
    # one good path and one missing: the good one is indexed, the missing one named, exit 1
    good = polish_lib / "pics" / LONG / "coffee.jpg"
    proc = run("index", good, tmp_path / "gone.jpg", "-l", tmp_path / "lib2")
    assert proc.returncode == 1 and b"added 1" in proc.stderr and b"1 path not found" in proc.stderr
    assert b"gone.jpg" in proc.stderr


def test_remove_of_an_unknown_path_says_so(polish_lib, tmp_path):
    proc = run("remove", tmp_path / "never-indexed.jpg", "-l", polish_lib / "lib")
    assert proc.returncode == 1 and b"never-indexed.jpg is not in the library" in proc.stderr
    assert b"removed 0 images; library has 3 images" in proc.stderr


def test_one_result_and_id_queries_name_the_image(polish_lib):
    proc = run("search", polish_lib / "pics" / LONG / "coffee.jpg", "-k", "1", "-l", polish_lib / "lib")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"1 result for" in proc.stdout and b"1 results" not in proc.stdout
    proc = run("search", "id:2", "-k", "2", "-l", polish_lib / "lib")
    assert proc.returncode == 0, proc.stderr.decode()
    first_line = proc.stdout.decode().splitlines()[0]
    assert first_line.startswith("2 results for id:2 (") and ".jpg)" in first_line


def test_piped_tables_keep_whole_paths_and_terminals_get_links(polish_lib):
    proc = run("search", polish_lib / "pics" / LONG / "coffee.jpg", "-k", "2", "-l", polish_lib / "lib", env={"COLUMNS": "80"})
    lines = proc.stdout.decode().splitlines()
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 2 and all(f"{polish_lib}/pics/{LONG}/" in row and ".jpg" in row for row in rows)  # whole paths, one line
    assert "\x1b" not in proc.stdout.decode()  # no escape codes in a pipe
    tty = run("search", polish_lib / "pics" / LONG / "coffee.jpg", "-k", "1", "-l", polish_lib / "lib",
              env={"FORCE_COLOR": "1", "COLUMNS": "400"})
    assert b"\x1b]8;" in tty.stdout and f"file://{polish_lib}/pics/{LONG}/".encode() in tty.stdout
