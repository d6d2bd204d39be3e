"""SQLite errors turned into the typed, one-line errors users see."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ...errors import Busy, LookalikeError, ReadOnly


def nearly_full(directory: Path, margin: int = 1 << 20) -> bool:
    """SQLite reports running out of space while growing its -shm/-wal files as an I/O error."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < margin


def read_only_error(directory: Path) -> LookalikeError:
    return ReadOnly(f"library {directory} is read-only (no write permission or a read-only disk): "
                    f"searching works, indexing and removing need write access")


def as_user_error(e: sqlite3.DatabaseError, directory: Path) -> LookalikeError:
    msg = str(e).lower()
    if "locked" in msg or "busy" in msg:
        return Busy(f"library {directory} is busy: another process is writing to it; try again")
    if "readonly" in msg or "read-only" in msg or (("unable to open" in msg) and not os.access(directory, os.W_OK)):
        return read_only_error(directory)
    if "full" in msg or ("disk i/o error" in msg and nearly_full(directory)):
        return ReadOnly(f"library {directory}: disk is full; nothing was lost: free some space and run the same command again")
    return LookalikeError(f"library {directory}: {e}")
