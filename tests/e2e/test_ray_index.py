"""`lookalike index --ray`: the embedding on a real Ray cluster gives the library local
indexing gives (same ids, paths, fields, tags; vectors within 1e-5), a corrupt file is its
one-line error, and later runs are incremental exactly like local ones."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Library
from lookalike.eval.datasets import fashion_mnist_available, load_fashion_mnist
from tests.support.cli import run

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'lookalike[ray]')")

N_FASHION = 34
CORRUPT = "corrupt.jpg"


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory, photos) -> Path:
    """34 Fashion-MNIST product photos, the bundled sample photos and one corrupt JPEG."""
    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    root = tmp_path_factory.mktemp("ray-images")
    pixels = load_fashion_mnist("test").pixels
    assert pixels is not None
    for i in range(N_FASHION):
        Image.fromarray(pixels[i]).save(root / f"fashion-{i:02d}.png")
    for name, im in photos.items():
        im.convert("RGB").resize((320, 240)).save(root / f"{name}.jpg", quality=90)
    (root / CORRUPT).write_bytes(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 64)  # a JPEG header, no image
    return root


@pytest.fixture(scope="module")
def local_indexing(tmp_path_factory, image_folder) -> tuple[Path, dict]:
    """The library (and report) plain local indexing makes of the folder: the reference."""
    lib_dir = tmp_path_factory.mktemp("ray-local-indexing")
    with Library.open(lib_dir) as lib:
        report = lib.add(image_folder)
    return lib_dir, report.to_dict()


def _contents(lib_dir: Path):
    with Library.open(lib_dir, create=False) as lib:
        records = sorted(lib.store.iter_records(), key=lambda r: r.id)
        vectors = np.asarray(lib.store.vectors([r.stored_id for r in records]))
    return records, vectors


def assert_same_library(built: Path, reference: Path) -> None:
    got, got_vectors = _contents(built)
    want, want_vectors = _contents(reference)
    assert [(r.id, r.path) for r in got] == [(r.id, r.path) for r in want]
    assert np.abs(got_vectors - want_vectors).max() <= 1e-5
    for g, w in zip(got, want):
        assert (g.sha256, g.size, g.mtime, g.width, g.height, g.fields) == (w.sha256, w.size, w.mtime, w.width, w.height, w.fields)
        assert [label for label, _ in g.tags] == [label for label, _ in w.tags]
        assert np.allclose([p for _, p in g.tags], [p for _, p in w.tags], atol=1e-4)


def _report(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return json.loads(proc.stdout)


def _images(folder: Path) -> int:
    return len([p for p in folder.iterdir() if p.name != CORRUPT])


def test_index_on_a_two_node_cluster(ray_cluster, image_folder, local_indexing, tmp_path):
    local_library, local_report = local_indexing
    lib_dir = tmp_path / "lib"
    first = _report(ray_cluster.cli("index", image_folder, "--library", lib_dir, "--ray", ray_cluster.address, "--json"))
    n = _images(image_folder)
    assert (first["added"], first["embedded"]) == (n, n)
    # The corrupt file: the same one-line reason as local indexing gives, decoded on a worker.
    assert first["failed"] == local_report["failed"]
    assert [f["path"] for f in first["failed"]] == [str(image_folder / CORRUPT)]
    reason = first["failed"][0]["reason"]
    assert reason and "\n" not in reason and "Traceback" not in reason
    assert_same_library(lib_dir, local_library)

    again = _report(ray_cluster.cli("index", image_folder, "--library", lib_dir, "--ray", ray_cluster.address, "--json"))
    assert (again["added"], again["updated"], again["embedded"], again["unchanged"]) == (0, 0, 0, n)

    # Incremental like local indexing: a moved file keeps its record, a new one is embedded.
    moved = image_folder / "fashion-00.png"
    renamed = image_folder / "renamed.png"
    new = image_folder / "fashion-new.png"
    moved.rename(renamed)
    pixels = load_fashion_mnist("test").pixels
    assert pixels is not None
    Image.fromarray(pixels[N_FASHION]).save(new)
    try:
        third = _report(ray_cluster.cli("index", image_folder, "--library", lib_dir, "--ray", ray_cluster.address,
                                        "--json"))
        assert (third["moved"], third["added"], third["embedded"]) == (1, 1, 1)
        with Library.open(lib_dir, create=False) as lib:
            assert lib.is_indexed(renamed) and lib.is_indexed(new) and len(lib) == n + 1
    finally:
        renamed.rename(moved)
        new.unlink()


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_ray_local_starts_and_stops_its_own_cluster(image_folder, local_indexing, tmp_path):
    local_library, _ = local_indexing
    lib_dir = tmp_path / "lib"
    marker = f"LOOKALIKE_TEST_RUN={uuid.uuid4().hex}"  # inherited by every Ray process it starts
    key, value = marker.split("=")
    report = _report(run("index", image_folder, "--library", lib_dir, "--ray", "local", "--json", env={key: value}))
    assert (report["added"], len(report["failed"])) == (_images(image_folder), 1)
    assert_same_library(lib_dir, local_library)
    # The cluster it started is gone: Ray's processes exit within moments of `ray.shutdown()`.
    deadline = time.monotonic() + 30
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [_cmdline(pid) for pid in _processes_with(marker)] == []


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return f"{pid} (gone)"
