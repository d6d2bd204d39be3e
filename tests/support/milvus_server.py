"""A real Milvus standalone server for the tests: the `milvus` PyPI package (2.3.5) ships
`milvus-server`. Started once per test session on free ports in a private data directory,
stopped by process group with SIGKILL (it ignores SIGTERM for ~20 s), data deleted."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

START_TIMEOUT_S = 240  # ~45 s on an idle 2-core machine; more when the machine is busy
# Every port milvus-server lets us choose; we pick free ones so parallel runs don't collide.
# Its embedded etcd's peer port (2380) and the metrics port (9091, or the next free one)
# are chosen by the server itself.
PORT_FLAGS = ["--etcd-port", "--root-coord-port", "--proxy-port", "--proxy-internal-port", "--query-coord-port",
              "--query-node-port", "--index-coord-port", "--index-node-port", "--data-coord-port", "--data-node-port"]
# The 2.3.5 server listens on all interfaces and cannot be told otherwise; advertise loopback
# at least, so its components talk to each other over 127.0.0.1.
ETCD_PEER_PORT = 2380
LOOPBACK = ["proxy", "rootCoord", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode"]


def server_binary() -> str | None:
    found = shutil.which("milvus-server") or str(Path(sys.executable).parent / "milvus-server")
    return found if os.access(found, os.X_OK) else None


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def milvus_server() -> Iterator[str]:
    """URI of a running Milvus 2.3.5 standalone server (http://127.0.0.1:PORT)."""
    if server_binary() is None:
        if sys.platform == "linux" and platform.machine() == "x86_64":
            pytest.fail("milvus-server is missing: `pip install milvus==2.3.5` (it is in requirements.lock)")
        pytest.skip(f"the milvus 2.3.5 server binary is not built for {sys.platform}/{platform.machine()}")
    try:
        proc, uri, data = start_server()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield uri
    finally:
        stop_server(proc, data)


def start_server() -> tuple[subprocess.Popen, str, Path]:
    """Start milvus-server in its own process group and private data directory; wait until it answers."""
    binary = server_binary()
    if binary is None:
        raise RuntimeError("milvus-server is missing: `pip install milvus==2.3.5`")
    with socket.socket() as probe:  # fixed in 2.3.5: a second server on this machine cannot start
        if probe.connect_ex(("127.0.0.1", ETCD_PEER_PORT)) == 0:
            raise RuntimeError(f"port {ETCD_PEER_PORT} is taken (another Milvus or etcd is running here); "
                               "milvus-server 2.3.5's embedded etcd needs it")
    data = Path(tempfile.mkdtemp(prefix="lookalike-milvus-"))
    ports = _free_ports(len(PORT_FLAGS))
    cmd = [binary, "--data", str(data)]
    for flag, port in zip(PORT_FLAGS, ports):
        cmd += [flag, str(port)]
    for component in LOOPBACK:
        cmd += ["--extra-config", f"{component}.ip=127.0.0.1"]
    log = data / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{ports[PORT_FLAGS.index('--proxy-port')]}"
    try:
        _wait_ready(proc, uri, data, log)
    except BaseException:
        stop_server(proc, data)
        raise
    return proc, uri, data


def stop_server(proc: subprocess.Popen, data: Path) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the milvus binary it started
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, uri: str, data: Path, log: Path) -> None:
    from pymilvus import MilvusClient

    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"milvus-server exited with {proc.returncode}:\n{_tail(log)}\n{_tail(data / 'logs' / 'milvus-stderr.log')}")
        try:
            client = MilvusClient(uri=uri, timeout=5)
            client.list_collections()
            client.close()
            return
        except Exception as e:  # noqa: BLE001 - not up yet
            last = str(e)
            time.sleep(1.0)
    raise RuntimeError(f"milvus-server did not answer on {uri} within {START_TIMEOUT_S} s ({last}):\n{_tail(log)}")
