"""Which image of a duplicate group to keep: an ordered list of criteria, each breaking the
ties of the one before (the image's id breaks the last tie, so the choice is stable).

Criteria:
- `resolution`: most pixels;
- `oldest`: earliest capture time: the `taken` metadata field when the image has one
  (EXIF DateTimeOriginal and the like), else the file's modification time;
- `newest`: the opposite of `oldest`;
- `size`: largest file;
- `path`: a name without copy markers ("copy", "Copy of", "(1)"), then the shortest path.

The default, `resolution,oldest,path`, keeps the sharpest version, then the original
rather than a later export, then the tidy name rather than "IMG_1 (1).jpg"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import InvalidQuery

if TYPE_CHECKING:  # only its attributes are read: importing the policy stays cheap (CLI help)
    from ..store import ImageRecord

DEFAULT_KEEP = ("resolution", "oldest", "path")
# "copy", "Copy of x", "x - Copy", "x_copy2", "x (1)", "copies/" folders.
_COPY_MARKER = re.compile(r"cop(y|ies)|\(\d+\)", re.IGNORECASE)


def capture_time(rec: ImageRecord) -> float:
    """Unix seconds the picture was taken: the `taken` field (ISO-8601) when present and
    readable, else the file's modification time."""
    taken = rec.fields.get("taken") if rec.fields else None
    if isinstance(taken, str):
        try:
            return datetime.fromisoformat(taken.strip().replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return rec.mtime


def has_copy_marker(path: str) -> bool:
    return bool(_COPY_MARKER.search(path))


_CRITERIA: dict[str, Callable[[ImageRecord], tuple]] = {
    "resolution": lambda r: (-r.width * r.height,),
    "oldest": lambda r: (capture_time(r),),
    "newest": lambda r: (-capture_time(r),),
    "size": lambda r: (-r.size,),
    "path": lambda r: (has_copy_marker(r.path), len(r.path), r.path),
}
CRITERIA = tuple(_CRITERIA)


@dataclass(frozen=True)
class KeepPolicy:
    criteria: tuple[str, ...] = DEFAULT_KEEP

    @classmethod
    def parse(cls, text: str | Sequence[str] | None) -> KeepPolicy:
        """`"resolution,oldest,path"` (or a list of names); None gives the default."""
        if text is None:
            return cls()
        names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
        if not names:
            raise InvalidQuery(f"the keep policy is empty: name criteria from {', '.join(CRITERIA)}")
        for n in names:
            if n not in _CRITERIA:
                raise InvalidQuery(f"unknown keep criterion {n!r}: choose from {', '.join(CRITERIA)}")
        return cls(tuple(names))

    def order(self, rec: ImageRecord) -> tuple:
        """Sort key: the image to keep sorts first."""
        return tuple(v for name in self.criteria for v in _CRITERIA[name](rec)) + (rec.id,)

    def __str__(self) -> str:
        return ",".join(self.criteria)
