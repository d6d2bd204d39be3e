"""Real servers for the tests: the app with uvicorn in a background thread on a free loopback
port, and `lookalike serve` in a subprocess (stopped by the caller, by PID)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import uvicorn
from fastapi import FastAPI


class BackgroundServer:
    """`with BackgroundServer(app) as url:` serves `app` on 127.0.0.1:<free port>."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", log_level: str = "warning") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))  # the kernel picks the port: no race with other processes
        self.url = f"http://{host}:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=2,
                                                        server_header=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server in another process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve_process(library: str | os.PathLike, port: int, env: dict[str, str] | None = None,
                        timeout_s: float = 120, args: tuple[str, ...] = ()) -> subprocess.Popen:
    """`lookalike serve` in a subprocess on 127.0.0.1:`port`, returned once /healthz answers
    (benchmarks and multi-process tests talk to a real, separate server)."""
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "lookalike", "serve", "--library", os.fspath(library),
                             "--host", "127.0.0.1", "--port", str(port), *args], stdout=subprocess.DEVNULL,
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
