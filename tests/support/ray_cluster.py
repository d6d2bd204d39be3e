"""A real two-node Ray cluster for the tests: a head and a worker node, one CPU each, each
started by `ray start --block` in its own process. Ray 2.60 listens on every interface
whatever `--node-ip-address` says, so the whole cluster runs in a private network namespace
(`unshare --net`: only loopback exists in it) and every command that talks to it runs in the
same namespace (`nsenter`). Token authentication as Ray 2.60 requires, with a token made for
this cluster. Stopped by killing, by PID, every process in that namespace, even when a test
fails."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import lookalike

from .cli import CLI

HEAD_PORT = 6379  # free by construction: nothing else lives in the namespace
START_TIMEOUT_S = 180  # ~20 s on an idle 2-core machine


@dataclass
class RayCluster:
    address: str  # the head's GCS address, for `--ray`
    holder: subprocess.Popen  # keeps the network namespace alive
    env: dict[str, str]  # what a driver needs: the token, and the Lookalike being tested
    temp_dir: Path

    def command(self, argv: list[str]) -> list[str]:
        """`argv` run inside the cluster's network namespace."""
        return ["nsenter", "--target", str(self.holder.pid), "--net", "--", *argv]

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv), capture_output=True, timeout=timeout, env=self.env)

    def cli(self, *args: object) -> subprocess.CompletedProcess:
        """`lookalike ARGS` as a user on a node of the cluster runs it."""
        return self.run([*CLI, *map(str, args)])


def can_isolate() -> bool:
    """`unshare --net` needs root (or unprivileged user namespaces)."""
    if not (shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


def _ray_binary() -> str:
    return str(Path(sys.executable).parent / "ray")


def _namespace_pids(holder: int) -> list[int]:
    try:
        ns = os.readlink(f"/proc/{holder}/ns/net")
    except OSError:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == ns:
                    pids.append(int(entry))
            except OSError:
                continue  # gone, or not ours to look at
    return pids


def stop_cluster(cluster: RayCluster, nodes: list[subprocess.Popen]) -> None:
    """SIGKILL every process in the namespace (Ray's raylets, GCS, workers, agents), then the holder."""
    for pid in _namespace_pids(cluster.holder.pid):
        if pid != cluster.holder.pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for proc in [*nodes, cluster.holder]:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    shutil.rmtree(cluster.temp_dir, ignore_errors=True)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def start_cluster() -> tuple[RayCluster, list[subprocess.Popen]]:
    # A short temp dir: Ray's Unix socket paths live under it (108-byte limit).
    temp_dir = Path(tempfile.mkdtemp(prefix="lkray-", dir="/tmp"))
    src = str(Path(lookalike.__file__).resolve().parents[1])
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    holder = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep infinity"],
                              start_new_session=True)
    cluster = RayCluster(f"127.0.0.1:{HEAD_PORT}", holder, env, temp_dir)
    nodes: list[subprocess.Popen] = []
    try:
        common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--temp-dir", str(temp_dir),
                  "--disable-usage-stats"]
        head = [_ray_binary(), "start", "--head", "--port", str(HEAD_PORT), "--include-dashboard", "false", *common]
        worker = [_ray_binary(), "start", "--address", cluster.address, *common]
        deadline = time.monotonic() + START_TIMEOUT_S
        _wait_namespace(holder, deadline)
        for name, argv in (("head", head), ("worker", worker)):
            log = temp_dir / f"{name}.log"
            with open(log, "wb") as out:
                nodes.append(subprocess.Popen(cluster.command(argv), stdout=out, stderr=subprocess.STDOUT,
                                              env=env, start_new_session=True))
            _wait_nodes(cluster, len(nodes), nodes, log, deadline)
    except BaseException:
        stop_cluster(cluster, nodes)
        raise
    return cluster, nodes


def _wait_namespace(holder: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if holder.poll() is not None:
            raise RuntimeError(f"unshare --net exited with {holder.returncode}")
        up = subprocess.run(["nsenter", "--target", str(holder.pid), "--net", "--", "ip", "-o", "link", "show", "lo"],
                            capture_output=True, text=True)
        if "UP" in up.stdout:
            return
        time.sleep(0.1)
    raise RuntimeError("the network namespace's loopback did not come up")


# Connects as a driver and waits until the cluster has N live nodes.
_COUNT_NODES = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
end = time.monotonic() + float(sys.argv[3])
while sum(n["Alive"] for n in ray.nodes()) < int(sys.argv[2]) and time.monotonic() < end:
    time.sleep(0.5)
print(sum(n["Alive"] for n in ray.nodes()))
"""


def _wait_nodes(cluster: RayCluster, n: int, nodes: list[subprocess.Popen], log: Path, deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        if nodes[-1].poll() is not None:
            raise RuntimeError(f"ray start exited with {nodes[-1].returncode}:\n{_tail(log)}")
        left = max(1.0, deadline - time.monotonic())
        try:
            got = cluster.run([sys.executable, "-c", _COUNT_NODES, cluster.address, str(n), str(left)], timeout=left + 30)
        except subprocess.TimeoutExpired:
            break
        if got.returncode == 0 and got.stdout.decode().strip() == str(n):
            return
        err_lines = got.stderr.decode(errors="replace").strip().splitlines()
        last = err_lines[-1] if err_lines else last
        time.sleep(1)
    raise RuntimeError(f"the Ray cluster did not reach {n} node(s) in {START_TIMEOUT_S} s: {last}\n{_tail(log)}")


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """A running two-node Ray cluster (head + worker, 1 CPU each) on loopback only."""
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'lookalike[ray]')")
    if not can_isolate():
        pytest.skip("a Ray cluster kept on loopback needs `unshare --net` (root or user namespaces)")
    try:
        cluster, nodes = start_cluster()
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield cluster
    finally:
        stop_cluster(cluster, nodes)
