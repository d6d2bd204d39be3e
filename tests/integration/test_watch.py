"""`lookalike watch`: real file events in a temporary folder (inotify through watchdog), the
real model and library. Every assertion waits a bounded time for the library to follow."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lookalike import Library
from lookalike.demo.samples import save_jpeg
from lookalike.engine.watch import Watcher

pytest.importorskip("watchdog")

DEBOUNCE = 0.4
LIMIT = 20.0  # seconds the library may take to follow a change (debounce + model + a busy machine)


def wait_for(condition, what: str, limit: float = LIMIT):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {limit:.0f} s: {what}")


@pytest.fixture
def jpegs(tmp_path, photos) -> dict[str, bytes]:
    out = {}
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        save_jpeg(photos[name], tmp_path / "src" / f"{name}.jpg", 90)
        out[name] = (tmp_path / "src" / f"{name}.jpg").read_bytes()
    return out


def test_the_library_follows_adds_changes_moves_and_deletes(tmp_path, jpegs):
    watched = tmp_path / "watched"
    (watched / "old").mkdir(parents=True)
    (watched / "old" / "chelsea.jpg").write_bytes(jpegs["chelsea"])
    batches = []
    with Library.open(tmp_path / "lib") as lib:
        lib.add([watched / "old"])
        (watched / "coffee.jpg").write_bytes(jpegs["coffee"])  # arrived while nobody watched
        watcher = Watcher(lib, [watched], debounce=DEBOUNCE, on_batch=batches.append)
        try:
            caught = watcher.start()
            assert caught is not None and caught.added == 1 and len(lib) == 2  # the catch-up scan

            (watched / "rocket.jpg").write_bytes(jpegs["rocket"])
            (watched / ".hidden.jpg").write_bytes(jpegs["rocket"])  # hidden files are not indexed
            (watched / "notes.txt").write_text("not an image")
            rocket = wait_for(lambda: lib.store.find_path(str(watched / "rocket.jpg")), "a new file is indexed")

            os.rename(watched / "rocket.jpg", watched / "old" / "rocket-moved.jpg")
            moved = wait_for(lambda: lib.store.find_path(str(watched / "old" / "rocket-moved.jpg")), "a moved file is followed")
            assert moved.id == rocket.id and lib.store.find_path(str(watched / "rocket.jpg")) is None  # same record: no re-embedding
            assert any(b.report.moved == 1 for b in batches)

            (watched / "coffee.jpg").write_bytes(jpegs["astronaut"])  # changed in place
            wait_for(lambda: lib.store.find_path(str(watched / "coffee.jpg")).sha256 == hashlib.sha256(jpegs["astronaut"]).hexdigest(),
                     "a changed file is re-indexed")

            os.remove(watched / "old" / "chelsea.jpg")
            wait_for(lambda: lib.store.find_path(str(watched / "old" / "chelsea.jpg")) is None, "a deleted file is forgotten")

            (watched / "new-folder").mkdir()
            (watched / "new-folder" / "cat.jpg").write_bytes(jpegs["chelsea"])
            wait_for(lambda: lib.store.find_path(str(watched / "new-folder" / "cat.jpg")), "a file in a new folder is indexed")
            time.sleep(DEBOUNCE * 3)
            paths = sorted(r.path for r in lib.records())
            assert paths == sorted(str(watched / p) for p in ("coffee.jpg", "old/rocket-moved.jpg", "new-folder/cat.jpg"))
            # the files it added are under the watched root: the served roots stay these two
            assert sorted(lib.indexed_roots()) == sorted([str(watched.resolve()), str((watched / "old").resolve())])
        finally:
            watcher.stop()


def test_a_slowly_written_file_is_indexed_once_and_complete(tmp_path, jpegs):
    watched = tmp_path / "watched"
    watched.mkdir()
    batches = []
    data = jpegs["astronaut"]
    with Library.open(tmp_path / "lib") as lib:
        watcher = Watcher(lib, [watched], debounce=DEBOUNCE, on_batch=batches.append)
        watcher.start()
        try:
            target = watched / "download.jpg"
            chunks = 12
            with open(target, "wb") as f:  # pauses shorter than the debounce, 1.8 s in all
                for i in range(chunks):
                    f.write(data[i * len(data) // chunks:(i + 1) * len(data) // chunks])
                    f.flush()
                    time.sleep(0.15)
            rec = wait_for(lambda: lib.store.find_path(str(target)), "the finished file is indexed")
            time.sleep(DEBOUNCE * 3)
            assert rec.sha256 == hashlib.sha256(data).hexdigest()  # read complete, never half-way
            touched = [b for b in batches if str(target) in b.paths]
            assert len(touched) == 1 and touched[0].report.added == 1 and touched[0].report.failed == []
        finally:
            watcher.stop()


def test_watch_command_runs_until_interrupted(tmp_path, jpegs):
    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "coffee.jpg").write_bytes(jpegs["coffee"])
    missing = subprocess.run([sys.executable, "-m", "lookalike", "watch", tmp_path / "nope", "-l", tmp_path / "lib"],
                             capture_output=True, timeout=120)
    assert missing.returncode == 1 and b"not a folder" in missing.stderr and not (tmp_path / "lib").exists()
    proc = subprocess.Popen([sys.executable, "-m", "lookalike", "watch", str(watched), "-l", str(tmp_path / "lib"),
                             "--debounce", str(DEBOUNCE), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any(b"catch_up" in ln for ln in lines), "the catch-up scan", limit=120)
        (watched / "rocket.jpg").write_bytes(jpegs["rocket"])
        wait_for(lambda: any(b'"added": 1' in ln and b"rocket.jpg" in ln for ln in lines), "a batch line for the new file")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read().decode()
    with Library.open(tmp_path / "lib", create=False) as lib:
        assert sorted(Path(r.path).name for r in lib.records()) == ["coffee.jpg", "rocket.jpg"]


def test_serve_watch_keeps_the_served_library_current(tmp_path, jpegs):
    import httpx

    from lookalike.api import create_app
    from tests.support.server import BackgroundServer

    watched = tmp_path / "watched"
    watched.mkdir()
    (watched / "coffee.jpg").write_bytes(jpegs["coffee"])
    with Library.open(tmp_path / "lib") as lib:
        lib.add([tmp_path / "src" / "chelsea.jpg"])  # a library must exist to be served
    app = create_app(tmp_path / "lib", watch=[watched], watch_debounce=DEBOUNCE)
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/healthz").json()["images"] == 2  # caught up before serving
        (watched / "rocket.jpg").write_bytes(jpegs["rocket"])
        wait_for(lambda: client.get("/healthz").json()["images"] == 3, "the server's library follows a new file")
        os.remove(watched / "coffee.jpg")
        wait_for(lambda: client.get("/healthz").json()["images"] == 2, "and a deleted one")
        names = {i["name"] for i in client.get("/api/images").json()["items"]}
        assert names == {"chelsea.jpg", "rocket.jpg"}
