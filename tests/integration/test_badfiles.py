"""Bad and odd files (tests/support/badfiles.py, 70 cases): each is indexed correctly or refused with a
one-line reason; every good file is indexed; nothing crashes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike import Library
from lookalike.engine.scan import printable
from tests.support.badfiles import FAILED, IGNORED, INDEXED, BadFile, build_corpus, deleted_path

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow on the corrupt-EXIF case

RACE = "file deleted while indexing"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, photos) -> tuple[Path, list[BadFile]]:
    root = tmp_path_factory.mktemp("badfiles") / "corpus"
    cases = build_corpus(root, photos)
    yield root, cases
    for dirpath, dirnames, _ in os.walk(root):  # let pytest clean up the mode-000 folder
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)


def _unprivileged() -> list[str] | None:
    """A command prefix under which file permissions apply even to root (CAP_DAC_* dropped),
    or None when that is not possible here."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        return None
    probe = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"], capture_output=True)
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if probe.returncode == 0 else None


def _check(root: Path, cases: list[BadFile], failed: dict[str, str], lib: Library) -> None:
    records = {r.path: r for r in lib.records()}
    problems = []
    for c in cases:
        path = c.path(root)
        got = INDEXED if path in records else FAILED if path in failed else IGNORED
        if got != c.expect:
            problems.append(f"{c.kind}: expected {c.expect}, got {got} {failed.get(path, '')}")
        elif got == FAILED and (c.reason not in failed[path].lower() or "\n" in failed[path]):
            problems.append(f"{c.kind}: reason {failed[path]!r} lacks {c.reason!r}")
        elif got == INDEXED and c.size and (records[path].width, records[path].height) != c.size:
            problems.append(f"{c.kind}: stored size {records[path].width}x{records[path].height}, expected {c.size}")
    unexpected = set(failed) - {c.path(root) for c in cases}
    assert problems == [] and unexpected == set()
    # "Correct indexing": each stored vector is the embedding of the file's bytes.
    content = [c for c in cases if c.expect == INDEXED and c.data]
    fresh = lib.embed([c.data for c in content])
    stored = lib.store.vectors([records[c.path(root)].id for c in content])
    assert np.abs(fresh - stored).max() < 1e-4
    assert len(records) == len({r.sha256 + r.path for r in records.values()})


def test_corpus_through_the_cli(corpus, tmp_path):
    root, cases = corpus
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permission cases cannot be tested")
    cases = [BadFile(c.kind, c.name, INDEXED, size=c.size) if c.kind == RACE else c for c in cases]
    assert len({c.kind for c in cases}) >= 60
    lib_dir = tmp_path / "lib"
    cmd = [*prefix, sys.executable, "-m", "lookalike", "index", str(root), "--library", str(lib_dir)]
    first = subprocess.run([*cmd, "--json"], capture_output=True, timeout=300)
    assert first.returncode == 0, first.stderr.decode(errors="replace")[-2000:]
    report = json.loads(first.stdout)
    failed = {item["path"]: item["reason"] for item in report["failed"]}
    with Library.open(lib_dir) as lib:
        # JSON paths are printable (non-UTF-8 bytes as \xNN); map back through the same function.
        by_printable = {printable(c.path(root), controls=False): c.path(root) for c in cases}
        _check(root, cases, {by_printable[p]: r for p, r in failed.items()}, lib)
        assert report["added"] == len(lib) == sum(c.expect == INDEXED for c in cases)
    # Again, as a person reads it: nothing new, and one line per refused file.
    again = subprocess.run(cmd, capture_output=True, timeout=300)
    assert again.returncode == 0
    lines = again.stderr.decode("utf-8").splitlines()
    assert any(line.startswith("added 0, updated 0") for line in lines)
    skipped = [line for line in lines if line.startswith("  skipped ")]
    assert sorted(skipped) == sorted(f"  skipped {printable(by_printable[p])}: {r}" for p, r in failed.items())


def test_corpus_in_process_with_a_file_deleted_while_indexing(corpus, tmp_path):
    # A copy without the pipe, socket and mode-000 entries (copytree cannot copy them;
    # the CLI test covers them), with the deletion race that only a progress hook can time.
    src, cases = corpus
    root = tmp_path / "corpus"
    left_out = ("special/pipe.jpg", "special/socket.jpg", "perm/locked.jpg", "perm/locked-dir")
    shutil.copytree(src, root, symlinks=True,
                    ignore=lambda d, names: [n for n in names if os.path.relpath(os.path.join(d, n), src) in left_out])
    cases = [c for c in cases if os.fsdecode(c.name) not in left_out]

    def delete_once(done: int, total: int) -> None:
        if done == 0 and os.path.exists(deleted_path(root)):
            os.unlink(deleted_path(root))  # after the scan, before the read

    with Library.open(tmp_path / "lib") as lib:
        report = lib.add([root], progress=delete_once, batch_size=8)
        _check(root, cases, dict(report.failed), lib)
        assert lib.search(cases[0].data, k=1)[0].score > 0.999
