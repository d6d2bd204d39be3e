"""Shared by the benchmarks (`python bench/<name>.py` puts this folder on sys.path)."""

from __future__ import annotations

import io
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

# The benches start `lookalike serve` the way the tests do (tests/support/server.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server import free_port, start_serve_process  # noqa: E402

__all__ = ["free_port", "indexed_sample_gallery", "median_ms", "start_serve_process", "unseen_queries"]

from lookalike import Library
from lookalike.demo.samples import build_gallery, unseen_edits


def indexed_sample_gallery(root: Path) -> Path:
    """Build the 98-image sample gallery under `root` and index it; returns the library."""
    build_gallery(root / "gallery")
    with Library.open(root / "lib") as lib:
        lib.add([root / "gallery"])
    return root / "lib"


def unseen_queries() -> list[bytes]:
    """JPEG bytes of edits the gallery does not hold (greyscale, occluded, tight crop)."""
    out = []
    for _, q in unseen_edits().values():
        buf = io.BytesIO()
        q.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out




def median_ms(runs: int, step: Callable[[int], object]) -> tuple[float, float]:
    """Median (wall ms, CPU ms of this process) of step(0), ..., step(runs - 1)."""
    wall, cpu = [], []
    for i in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        step(i)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)
