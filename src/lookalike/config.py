"""Locations and limits that come from the environment, resolved in one place."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "effnet-lite0"
DEFAULT_LIBRARY = "lookalike-library"


def cache_dir() -> Path:
    """Where exported ONNX models and fine-tuned models live (`$LOOKALIKE_CACHE`)."""
    env = os.environ.get("LOOKALIKE_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "lookalike"
    return base.expanduser()


def default_library() -> Path:
    return Path(os.environ.get("LOOKALIKE_LIBRARY") or DEFAULT_LIBRARY).expanduser()


def max_pixels() -> int:
    """Largest image (width x height) we decode; guards against decompression bombs."""
    return int(os.environ.get("LOOKALIKE_MAX_PIXELS", 150_000_000))


def decode_budget_bytes() -> int:
    """Memory all concurrent image decodes of one process may hold (`$LOOKALIKE_DECODE_BUDGET_MB`)."""
    return int(float(os.environ.get("LOOKALIKE_DECODE_BUDGET_MB", 1500)) * 1_000_000)


def cpu_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
