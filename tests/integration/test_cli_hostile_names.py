"""File names are data, not markup: names that look like Rich markup or terminal escapes are
indexed and shown literally by the CLI's tables (search, duplicates), never parsed, never a
traceback. A real subprocess over real files."""

from __future__ import annotations

import os
import subprocess
import sys

from lookalike.demo.samples import save_jpeg

# Each one is a real file; the photo is the same, so they are also exact duplicates of each other.
HOSTILE = ["[red]red[/red].jpg", "[/].jpg", "[link=https:attacker.example]x[/link].jpg", "[bold.jpg",
           "\x1b[31mescape.jpg", "back\\slash[/b].jpg", ":smile: emoji.jpg"]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)], capture_output=True, timeout=300,
                          env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"})


def test_hostile_file_names_are_shown_literally(tmp_path, photos):
    folder = tmp_path / "pics"
    for name in HOSTILE:
        save_jpeg(photos["coffee"], folder / name)
    proc = run("index", folder, "--library", tmp_path / "lib")
    assert proc.returncode == 0, proc.stderr.decode()
    for args in (("search", folder / HOSTILE[0], "-k", str(len(HOSTILE))), ("duplicates",)):
        proc = run(*args, "--library", tmp_path / "lib")
        out, err = proc.stdout.decode(), proc.stderr.decode()
        assert proc.returncode == 0 and "Traceback" not in err, err
        for name in HOSTILE:
            shown = name.replace("\x1b", "\\x1b")  # a control character is escaped, never emitted
            assert shown.removesuffix(".jpg") in out, (name, out)
        assert "\x1b[31m" not in out
