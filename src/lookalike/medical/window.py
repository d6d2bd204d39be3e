"""Windowing: stored values (Hounsfield units for CT, arbitrary units elsewhere) -> 8-bit grey.

A window is a centre C and width W: values below C - W/2 are black, above C + W/2 white. The
model sees only what the window shows, so the choice matters more than any other setting:
a brain window and a lung window of the same CT slice are different pictures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidQuery

# Common CT presets in Hounsfield units (centre, width).
CT_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "soft": (40.0, 400.0),
}
# With no window in the file: CT gets the soft-tissue window, other modalities these percentiles.
CT_DEFAULT = "soft"
ROBUST_PERCENTILES = (0.5, 99.5)
NAMES = (*CT_PRESETS, "auto")


@dataclass(frozen=True)
class Window:
    """`preset` is a CT preset name or "auto"; `centre`/`width` set: an explicit window."""

    preset: str = "auto"
    centre: float | None = None
    width: float | None = None

    @property
    def spec(self) -> str:
        """The text `parse_window` reads back (what a library stores in its meta)."""
        return f"{self.centre:g},{self.width:g}" if self.centre is not None else self.preset


def parse_window(text: str | None) -> Window:
    """`brain|lung|bone|soft|auto` or `C,W` (centre, width; width > 0) -> Window."""
    if text is None or not str(text).strip():
        return Window()
    value = str(text).strip().lower()
    if value in NAMES:
        return Window(value)
    parts = value.split(",")
    try:
        centre, width = (float(p) for p in parts)
    except ValueError:
        raise InvalidQuery(f"window {text!r}: use one of {', '.join(NAMES)} or CENTRE,WIDTH (e.g. 40,400)") from None
    if not (np.isfinite(centre) and np.isfinite(width)) or width <= 0:
        raise InvalidQuery(f"window {text!r}: the centre must be finite and the width a positive number")
    return Window("explicit", centre, width)


def choose_window(window: Window, modality: str | None, file_window: tuple[float, float] | None,
                  values: np.ndarray) -> tuple[float, float, str]:
    """(centre, width, how it was chosen) for one image. An explicit window or a preset wins;
    `auto` takes the file's window, else the modality default."""
    if window.centre is not None and window.width is not None:
        return window.centre, window.width, "explicit"
    if window.preset in CT_PRESETS:
        c, w = CT_PRESETS[window.preset]
        return c, w, window.preset
    if file_window is not None and file_window[1] > 0:
        return file_window[0], file_window[1], "file"
    if (modality or "").upper() == "CT":
        c, w = CT_PRESETS[CT_DEFAULT]
        return c, w, CT_DEFAULT
    lo, hi = robust_range(values)
    return (lo + hi) / 2.0, max(hi - lo, 1e-6), "percentiles"


def robust_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, ROBUST_PERCENTILES)
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def apply_window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Linear window (DICOM PS3.3 C.11.2.1.2 without the half-step offsets) -> uint8."""
    lo = centre - width / 2.0
    scaled = (np.nan_to_num(values.astype(np.float32), nan=lo) - lo) * (255.0 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)
