"""Entry addressing: one file may hold several searchable entries (a video's sampled frames,
later a DICOM file's frames or slices). An entry's path is the file's path plus a fragment:

    /photos/beach.jpg             the whole file (a still image)
    /videos/clip.mp4#t=12.500     the frame shown 12.5 s into a video
    /scans/ct.dcm#frame=7         the 8th frame of a multi-frame file (0-based)

Everything that treats a record path as a file (exists, prune, remove, serve, move
detection) goes through `split_entry` / `file_of`. A file whose own name contains `#` is
still one entry: only a fragment of exactly these forms is recognised."""

from __future__ import annotations

import re

from PIL import Image

from ..errors import Unsupported
from ..imaging import load_image
from ..media.formats import media_kind

_FRAGMENT = re.compile(r"#(t=\d+(?:\.\d+)?|frame=\d+)$")


def split_entry(path: str) -> tuple[str, str | None]:
    """(file path, fragment or None): "/x/clip.mp4#t=12.500" -> ("/x/clip.mp4", "t=12.500")."""
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


def frame_entry(file: str, index: int) -> str:
    return f"{file}#frame={index}"


def entry_time(path: str) -> float | None:
    """Seconds into the video for a `#t=` entry, else None."""
    fragment = split_entry(path)[1]
    return float(fragment[2:]) if fragment and fragment.startswith("t=") else None


def load_entry(path: str, draft_size: int | None = None) -> Image.Image:
    """The picture an entry shows: a still image's pixels, or a video's frame at `#t=`.
    `draft_size` as in `load_image` (frames are scaled to it the way the indexer scales them)."""
    file, fragment = split_entry(path)
    if fragment is not None and fragment.startswith("t="):
        from ..media.video import DEFAULT_SHORT_SIDE, frame_at

        return frame_at(file, float(fragment[2:]), short_side=draft_size or DEFAULT_SHORT_SIDE)
    if fragment is not None:
        raise Unsupported(f"{path}: entries of the form #{fragment.split('=')[0]}=N are not readable yet")
    if media_kind(file) == "video":
        raise Unsupported(f"{file}: a video is not one image; name a moment in it, e.g. {time_entry(file, 0.0)}")
    return load_image(file, draft_size)
