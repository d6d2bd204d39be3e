"""Video frames through PyAV (FFmpeg inside the wheel): a bounded sample of frames, each of
which becomes a searchable entry, and single frames for thumbnails and crops.

Sampling: one candidate every `interval` seconds (stretched so a long video yields at most
`max_frames`), and a candidate is kept only when it differs visibly from the last kept one,
so a static shot costs one entry while every scene of a cut-heavy clip gets its own."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from PIL import Image

from ..errors import ImageLoadError
from ..extras import require

DEFAULT_INTERVAL = 2.0  # seconds between candidate frames
DEFAULT_MAX_FRAMES = 60  # entries per video at most
# Mean absolute difference (0..255) of 32x32 grey versions under which a candidate is the
# same shot as the last kept frame. Re-encoding noise is ~1; a cut or a pan is well above 10.
MIN_CHANGE = 6.0
# Seeking to each candidate decodes from the keyframe before it: cheaper than decoding every
# frame once candidates are further apart than this many keyframe intervals (measured:
# bench/video_sampling.py; 1.2 s keyframes: seeking 2.4x less CPU at 2 s; 10 s keyframes: 2x more).
SEEK_GOPS = 1.5
KEYFRAME_PROBE_PACKETS = 750  # packets demuxed (not decoded) to measure the keyframe interval
# Frames are scaled in FFmpeg to this short side (at least) before reaching Python.
DEFAULT_SHORT_SIDE = 320

_TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270,
              -90: Image.Transpose.ROTATE_270, -180: Image.Transpose.ROTATE_180, -270: Image.Transpose.ROTATE_90}


@dataclass
class VideoFrame:
    time: float  # seconds from the start of the video
    index: int  # the frame's number in the video stream (0-based, from its timestamp)
    image: Image.Image  # RGB, upright


@dataclass
class VideoInfo:
    duration: float  # seconds (0.0 when the container does not say)
    width: int  # upright frame size
    height: int
    fps: float
    created: str | None = None  # the container's creation_time, ISO-8601, when present
    frames: list[VideoFrame] = field(default_factory=list)


def sample_frames(path: str | os.PathLike, *, interval: float = DEFAULT_INTERVAL, max_frames: int = DEFAULT_MAX_FRAMES,
                  short_side: int | None = DEFAULT_SHORT_SIDE, min_change: float = MIN_CHANGE,
                  seek_above: float | None = None) -> VideoInfo:
    """The video's facts and its sampled frames (see the module docstring). `seek_above`:
    seek to each candidate when they are further apart than this many seconds (default: 1.5
    keyframe intervals, measured on the file), else decode every frame."""
    name = os.fsdecode(path)
    av = require("av", "reading video files", "video")
    try:
        if seek_above is None:
            seek_above = SEEK_GOPS * _keyframe_interval(av, name)
        with av.open(name, metadata_errors="ignore") as container:
            stream = _video_stream(container, name)
            info = _info(container, stream)
            step = max(interval, info.duration / max_frames) if info.duration > 0 else interval
            candidates = _seek_candidates(container, stream, step, info) if step > seek_above else \
                _sequential_candidates(container, stream, step)
            last: np.ndarray | None = None
            for t, frame in candidates:
                if not info.frames and last is None and abs(int(getattr(frame, "rotation", 0) or 0)) in (90, 270):
                    info.width, info.height = info.height, info.width  # a phone held upright
                image = _image(frame, short_side)
                sig = _signature(image)
                if last is not None and float(np.abs(sig - last).mean()) < min_change:
                    continue
                last = sig
                info.frames.append(VideoFrame(round(t, 3), _frame_number(t, info.fps), image))
                if len(info.frames) >= max_frames:
                    break
    except ImageLoadError:
        raise
    except Exception as e:  # FFmpeg raises many types for damaged files; each is one line here
        raise ImageLoadError(name, _reason(e)) from None
    if not info.frames:
        raise ImageLoadError(name, "no decodable video frames")
    return info


def frame_at(path: str | os.PathLike, seconds: float, short_side: int | None = DEFAULT_SHORT_SIDE) -> Image.Image:
    """The frame shown at `seconds` (the last one at or before it)."""
    name = os.fsdecode(path)
    av = require("av", "reading video files", "video")
    try:
        with av.open(name, metadata_errors="ignore") as container:
            stream = _video_stream(container, name)
            start = _start(stream)
            container.seek(int((start + max(0.0, seconds)) / stream.time_base), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if chosen is not None and frame.time - start > seconds + 1e-3:
                    break
                chosen = frame
            if chosen is None:
                raise ImageLoadError(name, f"no frame at {seconds:.3f} s")
            return _image(chosen, short_side)
    except ImageLoadError:
        raise
    except Exception as e:
        raise ImageLoadError(name, _reason(e)) from None


def _keyframe_interval(av, name: str) -> float:
    """Median seconds between keyframes over the first packets (demuxed, not decoded); the
    probed span when it holds fewer than two keyframes (an upper bound is all we need)."""
    with av.open(name, metadata_errors="ignore") as container:
        stream = _video_stream(container, name)
        keys: list[float] = []
        first = last = None
        for n, packet in enumerate(container.demux(stream)):
            if packet.pts is None:
                continue
            t = float(packet.pts * stream.time_base)
            first = t if first is None else first
            last = t
            if packet.is_keyframe:
                keys.append(t)
            if n >= KEYFRAME_PROBE_PACKETS:
                break
    if len(keys) >= 2:
        return float(np.median(np.diff(sorted(keys))))
    return (last - first) if first is not None and last is not None and last > first else 0.0


def _video_stream(container, name: str):
    if not container.streams.video:
        raise ImageLoadError(name, "no video stream (audio only?)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _start(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _info(container, stream) -> VideoInfo:
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        duration = 0.0
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    return VideoInfo(round(duration, 3), stream.codec_context.width, stream.codec_context.height, round(fps, 3),
                     _created(container.metadata.get("creation_time") or stream.metadata.get("creation_time")))


def _sequential_candidates(container, stream, step: float):
    """Decode every frame, yield one each `step` seconds: cheap for short or dense sampling."""
    start = _start(stream)
    next_t = 0.0
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        t = max(0.0, frame.time - start)
        if t + 1e-6 < next_t:
            continue
        yield t, frame
        next_t = t + step


def _seek_candidates(container, stream, step: float, info: VideoInfo):
    """Seek to each target time (to the keyframe before it) and decode up to it."""
    start = _start(stream)
    target = 0.0
    last_t = -1.0
    while target < info.duration:
        container.seek(int((start + target) / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            t = max(0.0, frame.time - start)
            if t + 1e-6 >= target:
                if t > last_t:
                    last_t = t
                    yield t, frame
                break
        target += step


def _image(frame, short_side: int | None) -> Image.Image:
    w, h = frame.width, frame.height
    if short_side and min(w, h) > short_side:
        scale = short_side / min(w, h)
        w, h = max(2, round(w * scale)), max(2, round(h * scale))
        image = frame.to_image(width=w, height=h)
    else:
        image = frame.to_image()
    turn = _TRANSPOSE.get(int(getattr(frame, "rotation", 0) or 0))
    return image.transpose(turn) if turn is not None else image


def _signature(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BILINEAR), np.float32)


def _frame_number(t: float, fps: float) -> int:
    return int(round(t * fps)) if fps > 0 else 0


def _created(value: str | None) -> str | None:
    """FFmpeg's creation_time ("2021-06-01T10:00:00.000000Z") as ISO-8601, or None."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.year < 1971:  # cameras without a clock write 1904/1970 epochs
        return None
    return moment.isoformat(timespec="seconds")


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())[:120] or type(e).__name__
    if "invalid data" in text.lower():
        return "not a video FFmpeg can read (invalid data)"
    return f"unreadable video ({text})"
