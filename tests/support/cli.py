"""Running the `lookalike` command as a user does: a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

CLI = [sys.executable, "-m", "lookalike"]


def run(*args: object, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], input=stdin, capture_output=True, timeout=300,
                          env={**os.environ, **(env or {})})
