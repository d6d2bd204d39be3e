"""Why did it match? A heat map on each of two images of where they agree, from the CNN's
own last feature map.

Each location of one image's feature map is scored by its dot product with the other
image's embedding: with average pooling these terms add up (over locations, divided by
their number and the norms) to exactly the cosine score, so the map shows which parts of
the image carried the similarity. Negative terms are clipped; each map is scaled to [0, 1]
by the larger maximum of the two, so a weak match stays visibly weak on both images."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import Conflict

PANEL = 320  # side of each image panel in the PNG
ALPHA = 0.55  # how much of the heat colour covers the picture


@dataclass
class Explanation:
    score: float  # cosine of the two embeddings
    confidence: float | None
    query: np.ndarray  # [h, w] in [0, 1]
    result: np.ndarray

    def to_dict(self) -> dict:
        return {"score": round(self.score, 6), "confidence": self.confidence, "grid": list(self.query.shape),
                "query": np.round(self.query, 4).tolist(), "result": np.round(self.result, 4).tolist()}


def agreement_maps(extractor, query: Image.Image, result: Image.Image) -> tuple[float, np.ndarray, np.ndarray]:
    """(cosine, query map, result map) from one forward pass over both images."""
    emb, fmaps = _feature_maps(extractor, [query, result])
    return agreement(emb[0], fmaps[0], emb[1], fmaps[1])


def agreement(q_emb: np.ndarray, q_map: np.ndarray, r_emb: np.ndarray, r_map: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(cosine, query map, result map) from each image's embedding and feature map."""
    # A multi-layer embedding starts with the pooled last feature map; the maps use that part.
    head = q_map.shape[-1]
    a = np.maximum(q_map @ r_emb[:head], 0.0)  # each query location against the result's embedding
    b = np.maximum(r_map @ q_emb[:head], 0.0)
    top = max(float(a.max()), float(b.max()), 1e-12)
    return float(q_emb @ r_emb), a / top, b / top


def _feature_maps(extractor, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
    if not getattr(extractor, "has_feature_maps", False):
        raise Conflict(f"explain needs a CNN model's feature maps; model {extractor.name!r} has none "
                          "(bundled EfficientNet models have them)")
    return extractor.feature_maps(images)


class FeatureMapCache:
    """The last few images explained, with their embedding and feature map, keyed by file
    (path, size, modification time): the web page explains every result against the same
    query, which is then decoded and run through the network once, not once per result."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[tuple, tuple[Image.Image, np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def maps(self, extractor, sources: list[tuple[tuple | None, Callable[[], Image.Image]]]
             ) -> list[tuple[Image.Image, np.ndarray, np.ndarray]]:
        """(image, embedding, feature map) per (key or None, loader); the images not cached
        are decoded and go through the network together, in one batch."""
        found: list[tuple[Image.Image, np.ndarray, np.ndarray] | None] = []
        with self._lock:
            for key, _ in sources:
                hit = self._items.get(key) if key is not None else None
                if key is not None and hit is not None:
                    self._items.move_to_end(key)
                found.append(hit)
        missing = [i for i, hit in enumerate(found) if hit is None]
        if missing:
            images = [sources[i][1]() for i in missing]
            emb, fmaps = _feature_maps(extractor, images)
            with self._lock:
                for j, i in enumerate(missing):
                    found[i] = (images[j], emb[j], fmaps[j])
                    key = sources[i][0]
                    if key is not None:
                        self._items[key] = found[i]  # type: ignore[assignment]
                        while len(self._items) > self.size:
                            self._items.popitem(last=False)
        return found  # type: ignore[return-value]


def heat_colours(grid: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A [h, w] map in [0, 1] -> an RGB image of `size`, smoothly upsampled, dark blue (0) to
    yellow-white (1)."""
    up = Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC)
    return Image.fromarray(_PALETTE[np.asarray(up)])  # one table look-up per pixel: a few ms for a panel


def _palette() -> np.ndarray:
    """[256, 3] uint8: each 8-bit level's colour along the stops."""
    stops = np.array([[0.05, 0.05, 0.35], [0.2, 0.3, 0.85], [0.1, 0.75, 0.6], [0.95, 0.8, 0.1], [1.0, 1.0, 0.85]])
    pos = np.arange(256) / 255 * (len(stops) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - lo)[:, None]
    return ((stops[lo] * (1 - frac) + stops[lo + 1] * frac) * 255).astype(np.uint8)


_PALETTE = _palette()


def overlay(image: Image.Image, grid: np.ndarray, side: int = PANEL) -> Image.Image:
    im = image.convert("RGB")
    im.thumbnail((side, side), Image.Resampling.BILINEAR)
    return Image.blend(im, heat_colours(grid, im.size), ALPHA)


def render_png(query: Image.Image, result: Image.Image, explanation: Explanation, side: str = "both") -> bytes:
    """PNG of the overlays: "both" side by side with the score, or just "query" / "result"."""
    if side == "query":
        canvas = overlay(query, explanation.query)
    elif side == "result":
        canvas = overlay(result, explanation.result)
    else:
        panels = {"query": overlay(query, explanation.query), "result": overlay(result, explanation.result)}
        gap, label_h = 8, 22
        w = sum(p.width for p in panels.values()) + gap
        h = max(p.height for p in panels.values()) + label_h
        canvas = Image.new("RGB", (w, h), "white")
        canvas.paste(panels["query"], (0, label_h))
        canvas.paste(panels["result"], (panels["query"].width + gap, label_h))
        conf = "" if explanation.confidence is None else f", confidence {explanation.confidence:.2f}"
        ImageDraw.Draw(canvas).text((4, 4), f"query | result: score {explanation.score:.3f}{conf} (bright = where they agree)",
                                    fill="black", font=ImageFont.load_default())
    buf = io.BytesIO()
    canvas.save(buf, "PNG", compress_level=1)  # fast: the page asks for one per result shown
    return buf.getvalue()
