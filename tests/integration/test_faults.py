"""Faults: SIGKILL at random moments, two processes on one library, a full disk, a read-only
library. Real subprocesses, real file systems (tmpfs and read-only bind mounts as root)."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bench.crash_test import child_env, db_state, leftovers, run_crash_test, verify

from lookalike import Library, LookalikeError
from lookalike.demo.samples import save_jpeg, variants
from lookalike.models.effnet import remove_stale_exports

CLI = [sys.executable, "-m", "lookalike"]


def cli(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, timeout=timeout, env=child_env())


def _photo_files(photos, folder: Path, names, with_variants: bool = False) -> list[Path]:
    files = []
    for name in names:
        files.append(save_jpeg(photos[name], folder / f"{name}.jpg"))
        if with_variants:
            for kind, im in variants(photos[name], seed=3).items():
                files.append(save_jpeg(im, folder / name / f"{name}-{kind}.jpg"))
    return files


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    """The short form of bench/crash_test.py (which runs >= 20 kills)."""
    rep = run_crash_test(tmp_path, kills=5, seed=7, initial=8, per_round=5, log=lambda *a: None)
    assert rep.problems == []
    assert rep.kills == 5 and rep.final_images >= 8


def test_search_keeps_answering_while_another_process_indexes(tmp_path, photos):
    base = _photo_files(photos, tmp_path / "base", ["chelsea", "coffee", "rocket", "astronaut"])
    new = _photo_files(photos, tmp_path / "new", ["camera", "moon", "coins"], with_variants=True)
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        lib.add([tmp_path / "base"])
        queries = [(p, p.read_bytes()) for p in base]
        writer = subprocess.Popen([*CLI, "index", str(tmp_path / "new"), "--library", str(lib_dir), "--batch-size", "2"],
                                  env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        searches, counts = 0, []
        while writer.poll() is None or searches < 3:
            path, data = queries[searches % len(queries)]
            hits = lib.search(data, k=5)
            assert hits[0].path == str(path) and hits[0].score > 0.999  # right answer, every time
            known = {r.path for r in lib.records()}
            assert all(h.path in known for h in hits)
            counts.append(len(lib))
            searches += 1
        assert writer.wait(timeout=300) == 0, writer.stderr.read().decode()
        assert counts == sorted(counts)  # never goes backwards: whole batches appear
        assert len(lib) == len(base) + len(new)  # the reader sees the other process's writes
        assert lib.search(new[0].read_bytes(), k=1)[0].path == str(new[0])
    assert leftovers(lib_dir) == []


def test_two_indexing_processes_at_once(tmp_path, photos):
    folder = tmp_path / "pics"
    files = _photo_files(photos, folder / "a", ["chelsea"], with_variants=True)
    files += _photo_files(photos, folder / "b", ["rocket", "coffee", "astronaut"])
    lib_dir = tmp_path / "lib"
    # Overlapping work: both want folder/a; one of them also folder/b.
    cmds = [[*CLI, "index", str(folder), "--library", str(lib_dir), "--batch-size", "2"],
            [*CLI, "index", str(folder / "a"), str(folder / "b"), "--library", str(lib_dir), "--batch-size", "3"]]
    procs = [subprocess.Popen(c, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p in procs:
        rc, err = p.wait(timeout=300), p.stderr.read().decode()
        # Concurrent writers are supported; only a lock held past the 30 s timeout may say "busy".
        assert rc == 0 or (rc == 1 and "busy" in err and len(err.strip().splitlines()) == 1), err
    assert cli("index", folder, "--library", lib_dir).returncode == 0  # completes a "busy" one, if any
    assert verify(lib_dir, folder, files) == []


@contextlib.contextmanager
def mounted(target: Path, *mount_args: str):
    """`mount` as root, or skip with the reason; always unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting file systems needs root")
    proc = subprocess.run(["mount", *mount_args], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        gc.collect()  # close any connection still referenced, so the mount is not busy
        for _ in range(20):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            subprocess.run(["umount", "-l", str(target)])


@contextlib.contextmanager
def read_only_dir(path: Path):
    """The directory becomes read-only: a read-only bind mount as root (permissions do not
    bind root), mode 0555 otherwise."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield
        finally:
            os.chmod(path, 0o755)
        return
    with mounted(path, "--bind", str(path), str(path)):
        proc = subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {proc.stderr.strip()}")
        yield


def test_read_only_library_is_searchable_and_refuses_writes_clearly(tmp_path, photos):
    _photo_files(photos, tmp_path / "pics", ["chelsea", "coffee", "rocket"])
    _photo_files(photos, tmp_path / "more", ["moon"])
    lib_dir = tmp_path / "lib"
    with Library.open(lib_dir) as lib:
        lib.add([tmp_path / "pics"])
    query = variants(photos["coffee"], seed=5)["crop"]
    with read_only_dir(lib_dir):
        with Library.open(lib_dir) as lib:
            assert lib.search(query, k=1)[0].path.endswith("coffee.jpg") and len(lib) == 3
            with pytest.raises(LookalikeError, match="read-only"):
                lib.add([tmp_path / "more"])
            with pytest.raises(LookalikeError, match="read-only"):
                lib.remove([tmp_path / "pics"])
        proc = cli("index", tmp_path / "more", "--library", lib_dir)
        last = proc.stderr.decode().strip().splitlines()[-1]  # after the progress bar: one error line
        assert proc.returncode == 1 and last.startswith("error:") and "read-only" in last
        assert cli("search", tmp_path / "more" / "moon.jpg", "--library", lib_dir, "--json").returncode == 0
    with Library.open(lib_dir) as lib:  # writable again: nothing was lost, indexing works
        assert lib.add([tmp_path / "more"]).added == 1 and len(lib) == 4


def test_disk_full_gives_a_clear_error_and_the_library_stays_usable(tmp_path, photos):
    folder = tmp_path / "pics"
    first = _photo_files(photos, folder / "first", ["chelsea", "coffee", "rocket"])
    later = _photo_files(photos, folder / "later", ["moon"], with_variants=True)
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    with mounted(lib_dir, "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(lib_dir)):
        with Library.open(lib_dir) as lib:
            lib.add([folder / "first"])
        free = os.statvfs(lib_dir)
        filler = lib_dir / "filler"
        filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 100_000))  # SQLite's -shm and a few vectors
        proc = cli("index", folder / "later", "--library", lib_dir, "--batch-size", "4")
        err = proc.stderr.decode().strip().splitlines()
        assert proc.returncode == 1 and err[-1].startswith("error:") and "disk is full" in err[-1]
        assert "Traceback" not in proc.stderr.decode()
        rows, problems = db_state(lib_dir)
        assert problems == [] and 3 <= rows < 3 + len(later)
        with open(lib_dir / "filler", "ab") as f:  # now completely full
            with contextlib.suppress(OSError):
                f.write(b"\0" * 200_000)
        with Library.open(lib_dir) as lib:  # still searchable, with what was committed
            assert lib.search(first[1].read_bytes(), k=1)[0].path == str(first[1]) and len(lib) == rows
            with pytest.raises(LookalikeError, match="disk is full"):
                lib.add([folder / "later"])
        filler.unlink()
        assert cli("index", folder, "--library", lib_dir).returncode == 0  # space freed: completes
        assert verify(lib_dir, folder, first + later) == []


def test_a_killed_model_export_leaves_no_temporary_file(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"effnet-lite0-v1.pid{dead.pid}.abc.onnx.tmp"  # as a SIGKILLed export leaves it
    live = tmp_path / f"effnet-lite0-v1.pid{os.getpid()}.def.onnx.tmp"  # an export in progress
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    assert remove_stale_exports(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


def test_store_writes_from_two_connections_never_duplicate_a_path(tmp_path):
    """What two indexers racing on one file come down to, made deterministic: both saw no
    record for the path, both insert it; or one updates a record the other removed."""
    from lookalike.store import ImageRecord, Upsert
    from lookalike.store.embedded import EmbeddedStore

    a, b = EmbeddedStore(tmp_path), EmbeddedStore(tmp_path)
    a.set_meta({"dim": "4"})
    v1, v2 = np.eye(4, dtype=np.float32)[:2]
    try:
        (id_b,) = b.write([Upsert(ImageRecord("/p/x.jpg", "sha-b", 1, 1.0, 2, 2), v1)])
        (id_a,) = a.write([Upsert(ImageRecord("/p/x.jpg", "sha-a", 1, 2.0, 2, 2), v2)])  # a's stale view: no record
        assert a.count() == b.count() == 1 and id_a == id_b
        assert a.find_path("/p/x.jpg").sha256 == "sha-a" and np.array_equal(b.vectors([id_b])[0], v2)
        assert [i for i, _ in b.search(v2[None], 5)[0]] == [id_b]  # b's matrix reloads after a's commit
        b.write(removes=[id_b])
        moved = ImageRecord("/p/y.jpg", "sha-a", 1, 2.0, 2, 2, id=id_a)
        assert a.write([Upsert(moved)]) == [-1] and a.count() == 0  # nothing to move: skipped, no error
        (new,) = a.write([Upsert(moved, v1)])  # with a vector it is simply stored again
        assert a.find_path("/p/y.jpg").id == new and b.count() == 1
    finally:
        a.close()
        b.close()
