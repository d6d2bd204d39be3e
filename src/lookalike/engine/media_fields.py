"""The `fields` a record gets from its media: what kind of entry it is, the photo's EXIF,
a video frame's place in its video, and `date`, the one moment `--since/--until` and
browsing by date use (the capture time when the file records one, else the file's time)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..media.exif import photo_fields
from ..media.video import VideoFrame, VideoInfo


def image_fields(data: bytes, mtime: float) -> dict[str, Any]:
    """Fields of a still image from its encoded bytes (EXIF read from the header only)."""
    fields: dict[str, Any] = {"media": "image", **photo_fields(data)}
    fields["date"] = record_date(fields.get("taken"), mtime)
    return fields


def frame_fields(info: VideoInfo, frame: VideoFrame, mtime: float) -> dict[str, Any]:
    fields: dict[str, Any] = {"media": "video", "video_time": frame.time, "frame_index": frame.index,
                              "duration": info.duration}
    if info.created:
        fields["taken"] = info.created
    fields["date"] = _video_date(info.created, mtime)
    return fields


# Every field this module writes: replaced together when a file's content changes, so no
# EXIF of an earlier version survives (other fields, e.g. catalogue columns, are kept).
MEDIA_FIELDS = ("media", "date", "taken", "make", "camera", "lens", "orientation", "lat", "lon",
                "video_time", "frame_index", "duration")


def replace_media_fields(previous: dict[str, Any], media: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in previous.items() if k not in MEDIA_FIELDS}
    fields.update(media)
    return fields


def with_date(fields: dict[str, Any], mtime: float) -> dict[str, Any]:
    """`fields` with `date` recomputed for a file whose modification time is now `mtime`
    (it only moves when the date came from the file time, not from a capture time)."""
    if "media" not in fields:
        return fields  # no media fields yet: the refresh pass adds them all
    taken = fields.get("taken")
    return {**fields, "date": _video_date(taken, mtime) if fields["media"] == "video" else record_date(taken, mtime)}


def _video_date(created: str | None, mtime: float) -> str:
    # A container's creation_time is UTC: shown as this machine's local time.
    local = datetime.fromisoformat(created).astimezone().replace(tzinfo=None).isoformat() if created else None
    return record_date(local, mtime)


def record_date(taken: str | None, mtime: float) -> str:
    """Local wall-clock time, ISO-8601 without offset ("2021-06-01T10:00:00"): the capture
    time as the camera showed it, or the file's modification time on this machine. Both are
    what a person means by "photos from June 1st", and they compare as text."""
    if taken:
        return taken[:19]
    return datetime.fromtimestamp(mtime).isoformat(timespec="seconds")
