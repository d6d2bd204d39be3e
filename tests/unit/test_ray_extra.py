"""`lookalike index --ray` without the `ray` extra: one line naming the pip command, exit 1,
before any model or cluster work, and no library left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PIL import Image

# Runs the CLI as if Ray were not installed (a None entry makes `import ray` fail).
_WITHOUT_RAY = """
import runpy, sys
sys.modules["ray"] = None
sys.argv = ["lookalike", *sys.argv[1:]]
runpy.run_module("lookalike", run_name="__main__")
"""


def test_ray_without_the_extra_is_one_line(tmp_path):
    Image.new("RGB", (32, 32), "teal").save(tmp_path / "one.png")
    lib = tmp_path / "lib"
    out = subprocess.run([sys.executable, "-c", _WITHOUT_RAY, "index", str(tmp_path / "one.png"), "--library", str(lib),
                          "--ray", "local"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "lookalike[ray]" in lines[0] and "Traceback" not in out.stderr
    assert not lib.exists()


def test_ray_client_addresses_are_refused_in_one_line():
    """Ray Data does not run through Ray Client (ray://) in Ray 2.60: say so before connecting."""
    from lookalike.engine.distributed import ray_cluster
    from lookalike.errors import Unsupported

    with pytest.raises(Unsupported, match=r"ray://head:10001: Ray Client .* --ray HOST:6379"):
        with ray_cluster("ray://head:10001"):
            pass


def test_a_head_that_does_not_answer_is_one_line_at_once():
    """Ray itself retries an unreachable GCS for minutes; `--ray` says so in seconds."""
    import socket
    import time

    from lookalike.engine.distributed import ray_cluster
    from lookalike.errors import InvalidQuery, NotFound

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(NotFound, match=f"no Ray cluster at 127.0.0.1:{port}: "):
        with ray_cluster(f"127.0.0.1:{port}"):
            pass
    assert time.monotonic() - t0 < 15
    with pytest.raises(InvalidQuery, match="expected HOST:PORT"):
        with ray_cluster("head-without-port"):
            pass
