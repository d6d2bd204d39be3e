"""A real Orthanc PACS for the tests (Debian `orthanc`, `orthanc-dicomweb`, `orthanc-gdcm`).

Orthanc 1.10 cannot be bound to one address, so it runs with remote access refused,
authentication on, the DICOM (C-STORE) server off, its own storage folder and a free HTTP port;
every request goes to 127.0.0.1. Stopped by PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ORTHANC = "/usr/sbin/Orthanc"
PLUGINS = Path("/usr/share/orthanc/plugins")
USER, PASSWORD = "lookalike", "pacs-test-password"
START_TIMEOUT_S = 60


@dataclass
class Orthanc:
    url: str  # http://127.0.0.1:PORT
    pid: int

    @property
    def dicomweb(self) -> str:
        return f"dicomweb+{self.url}/dicom-web"

    def request(self, method: str, path: str, data: bytes | None = None) -> dict | list:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = resp.read()
        return json.loads(body) if body.strip() else {}

    def upload(self, path: Path) -> str:
        """POST /instances: the Orthanc id of the stored instance."""
        return str(self.request("POST", "/instances", Path(path).read_bytes())["ID"])  # type: ignore[index]

    def delete(self, orthanc_id: str) -> None:
        self.request("DELETE", f"/instances/{orthanc_id}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_orthanc(folder: Path) -> Iterator[Orthanc]:
    plugins = [PLUGINS / "libOrthancDicomWeb.so", PLUGINS / "libOrthancGdcm.so"]
    if not os.access(ORTHANC, os.X_OK) or not all(p.exists() for p in plugins):
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb orthanc-gdcm)")
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config = {"Name": "lookalike-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
              "HttpPort": port, "DicomPort": _free_port(), "DicomServerEnabled": False,
              "RemoteAccessAllowed": False, "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD},
              "Plugins": [str(p) for p in plugins], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
              "HttpDescribeErrors": False}
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")
    proc = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    server = Orthanc(f"http://127.0.0.1:{port}", proc.pid)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                server.request("GET", "/system")
                break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()
