"""Finding image and video files under the paths a user names."""

from __future__ import annotations

import errno
import os
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from ..media.formats import MEDIA_EXTENSIONS, extension
from ..medical.reader import is_scan_name, sniff_dicom


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, as the user sees it (symlinks not resolved)
    size: int
    mtime: float


def absolute(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fsdecode(path)))


def scan(paths: list[str | os.PathLike], skip: Sequence[str | os.PathLike] = (),
         skipped: Counter[str] | None = None) -> tuple[list[FileEntry], list[tuple[str, str]]]:
    """Walk files and folders recursively (hidden files and folders and `skip` excluded).
    Files named explicitly are always taken; inside folders only image and video extensions
    are, and every other file is counted by extension in `skipped`. Returns the entries in a
    stable order and (path, reason) for what could not be looked at."""
    skip_set = {absolute(p) for p in skip}
    entries: dict[str, FileEntry] = {}
    failed: list[tuple[str, str]] = []

    def take(path: str) -> None:
        if path in entries:
            return
        try:
            st = os.stat(path)
        except OSError as e:
            failed.append((path, _stat_reason(path, e)))
            return
        if not os.path.isfile(path):
            failed.append((path, "not a regular file"))
            return
        entries[path] = FileEntry(path, st.st_size, st.st_mtime)

    for given in paths:
        root = absolute(given)
        if os.path.isdir(root):
            def walk_error(e: OSError, root: str = root) -> None:
                where = os.fsdecode(e.filename or root)
                failed.append((where, _stat_reason(where, e)))

            for dirpath, dirnames, filenames in os.walk(root, onerror=walk_error):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                                     and os.path.join(dirpath, d) not in skip_set)
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    full = os.path.join(dirpath, name)
                    if (os.path.splitext(name)[1].lower() in MEDIA_EXTENSIONS or is_scan_name(name)
                            or (_maybe_dicom(name) and sniff_dicom(full))):
                        take(full)
                    elif skipped is not None:
                        skipped[extension(name)] += 1
        elif os.path.lexists(root):
            take(root)
        else:
            failed.append((root, "no such file or directory"))
    return list(entries.values()), failed


def _maybe_dicom(name: str) -> bool:
    """PACS exports name DICOM files IM0001, 1.2.840.113619.2..., DICOM/I0: no extension, or a
    numeric one. Only those are opened to look for the DICM preamble."""
    ext = os.path.splitext(name)[1]
    return ext == "" or ext[1:].isdigit()


# Records that are not local files: catalogue items (engine/catalogue) and PACS instances
# (engine/dicomweb_index.py). They exist as long as the library says so.
VIRTUAL_PREFIXES = ("item:", "dicomweb+")


def record_file_exists(path: str) -> bool:
    """Whether the file behind an indexed record's path still exists: the one check that
    searches and duplicate reports use to leave deleted files out. A frame, slice or video
    moment (`FILE#frame=N`, engine/entries.py) lives as long as its file."""
    if path.startswith(VIRTUAL_PREFIXES):
        return True
    from .entries import file_of

    return os.path.exists(file_of(path))


def record_folder_exists(path: str) -> bool:
    """Whether the folder of a record's file exists (a missing one may be an unplugged drive)."""
    from .entries import file_of

    return os.path.isdir(os.path.dirname(file_of(path)))


def printable(path: str, controls: bool = True) -> str:
    """A path safe to print or put in JSON: bytes of a name that is not UTF-8 become `\\xNN`
    and (with `controls`) newlines, tabs and other control characters are escaped, so each
    summary line stays one line."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    if controls:
        text = "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return text


def _stat_reason(path: str, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno == errno.ENOENT and os.path.islink(path):
        return "broken symbolic link"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.ENOENT:
        return "file disappeared while scanning"
    return f"unreadable ({e.strerror})"
