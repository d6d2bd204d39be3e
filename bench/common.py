"""Shared by the HTTP benchmarks (`python bench/<name>.py` puts this folder on sys.path)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server in another process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve_process(library: str | os.PathLike, port: int, env: dict[str, str] | None = None,
                        timeout_s: float = 120) -> subprocess.Popen:
    """`lookalike serve` in a subprocess on 127.0.0.1:`port`, returned once /healthz answers
    (the benchmarks talk to a real, separate server; tests have their own copy in tests/support)."""
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "lookalike", "serve", "--library", os.fspath(library),
                             "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "NO_PROXY": "127.0.0.1", **(env or {})})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not come up within {timeout_s:.0f} s")
