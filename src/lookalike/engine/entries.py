"""Entry addressing: one file may hold several searchable entries (a multi-frame DICOM's
frames, a NIfTI volume's slices, a video's sampled frames). An entry's path is the file's
path plus a fragment:

    /photos/beach.jpg             the whole file (a still image, a single-frame DICOM)
    /scans/us.dcm#frame=7         the 8th frame of a multi-frame file (0-based)
    /scans/t1.nii.gz#slice=90     the 91st axial slice of a volume (0-based)
    /videos/clip.mp4#t=12.500     the frame shown 12.5 s into a video

Everything that treats a record path as a file (exists, prune, remove, serve) goes through
`split_entry` / `file_of`. A file whose own name contains `#` is still one entry: only a
fragment of exactly these forms is recognised."""

from __future__ import annotations

import os
import re

from PIL import Image

from ..errors import ImageLoadError, Unsupported
from ..imaging import load_image, read_file
from ..media.formats import media_kind

WINDOW_META = "scan_window"  # the library's window spec for scans (medical/window.py), "auto" by default
_FRAGMENT = re.compile(r"#(t=\d+(?:\.\d+)?|frame=\d+|slice=\d+)$")


def split_entry(path: str) -> tuple[str, str | None]:
    """(file path, fragment or None): "/x/ct.dcm#frame=3" -> ("/x/ct.dcm", "frame=3")."""
    m = _FRAGMENT.search(path)
    if m is None:
        return path, None
    return path[: m.start()], m.group(1)


def file_of(path: str) -> str:
    """The file an entry lives in."""
    return split_entry(path)[0]


def time_entry(file: str, seconds: float) -> str:
    """The entry of the video frame at `seconds` (millisecond precision, stable text)."""
    return f"{file}#t={seconds:.3f}"


def entry_time(path: str) -> float | None:
    """Seconds into the video for a `#t=` entry, else None."""
    fragment = split_entry(path)[1]
    return float(fragment[2:]) if fragment and fragment.startswith("t=") else None


def frame_entry(file: str, index: int) -> str:
    return f"{file}#frame={index}"


def slice_entry(file: str, index: int) -> str:
    return f"{file}#slice={index}"


def entry_of(file: str, fragment: str | None) -> str:
    return file if fragment is None else f"{file}#{fragment}"


def load_entry(path: str, draft_size: int | None = None, window: str | None = None) -> Image.Image:
    """The picture an entry shows: a still image's pixels, a video's frame at `#t=` (scaled
    to `draft_size` the way the indexer scales frames), or a scan's frame or slice as the
    library windows it (`window`: a spec of medical/window.py; None: auto)."""
    from ..medical.reader import is_scan

    file, fragment = split_entry(path)
    if fragment is not None and fragment.startswith("t="):
        from ..media.video import DEFAULT_SHORT_SIDE, frame_at

        return frame_at(file, float(fragment[2:]), short_side=draft_size or DEFAULT_SHORT_SIDE)
    if fragment is None and media_kind(file) == "video":
        raise Unsupported(f"{file}: a video is not one image; name a moment in it, e.g. {time_entry(file, 0.0)}")
    if not is_scan(file):
        if fragment is not None:
            raise ImageLoadError(path, f"#{fragment} names a frame, but {os.path.basename(file)} is not a scan file")
        return load_image(file, draft_size)
    from ..medical.reader import read_scan
    from ..medical.window import parse_window

    frames = read_scan(read_file(file), file, parse_window(window))
    if fragment is None:
        if len(frames) == 1:
            return frames[0].image
        raise ImageLoadError(path, f"holds {len(frames)} pictures: name one, e.g. {entry_of(file, frames[0].fragment)}")
    for frame in frames:
        if frame.fragment == fragment:
            return frame.image
    raise ImageLoadError(path, f"no #{fragment} in this file ({len(frames)} pictures)")


def is_scan_entry(path: str) -> bool:
    """An entry read through the scan reader (DICOM, NIfTI), by its fragment or its file."""
    from ..medical.reader import is_scan_name

    file, fragment = split_entry(path)
    return (fragment is not None and not fragment.startswith("t=")) or is_scan_name(file)


def is_scan_record(path: str, fields: dict) -> bool:
    """An indexed scan entry: by its stored format, which also covers DICOM files without an
    extension (`IM0001`), else by its path."""
    return fields.get("format") in ("dicom", "nifti") or is_scan_entry(path)


def scan_picture(data: bytes, path: str, window: str | None = None) -> Image.Image:
    """The picture of a scan entry from its file's bytes (already opened and checked by the
    caller); a file given without a fragment shows its middle frame."""
    from ..medical.reader import read_scan
    from ..medical.window import parse_window

    frames = read_scan(data, file_of(path), parse_window(window))
    fragment = split_entry(path)[1]
    if fragment is None:
        return frames[len(frames) // 2].image
    for frame in frames:
        if frame.fragment == fragment:
            return frame.image
    raise ImageLoadError(path, f"no #{fragment} in this file ({len(frames)} pictures)")
