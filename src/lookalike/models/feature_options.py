"""Feature options of the EfficientNet-Lite models that the suite measures but no default uses
(`lookalike eval suite --methods effnet-lite0+stage5+s288`, eval/suite.py):

- `gemP`: generalised-mean exponent P of the last feature map (`gem1` is the average);
- `stageK` / `stageKwW`: multi-layer pooling, the average of stage K's output (1..7 of
  onnx_graph.LITE_STAGES), L2-normalised, weighted W (default 1), appended to the embedding;
- `sN`: multi-scale, the embedding at an N px input too, the scales' embeddings averaged;
- `rmac`: regional descriptors (R-MAC, 3 levels of max-pooled regions) instead of global pooling;
- `pad` / `crop`: aspect-preserving resize (grey padding, or a centre crop) instead of squashing.

One ONNX graph per input size (the model's plus each `sN`) outputs the last feature map and
the stages' outputs; the pooling runs in NumPy (models/pooling.py)."""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..config import cache_dir, cpu_threads
from .base import BatchEmbedMixin, Features, l2_normalize
from .effnet import EffnetSpec, weights_path, write_atomically
from .onnx_extractor import onnx_session
from .onnx_graph import GEM_P, build_effnet_lite
from .pooling import avg_pool, gem_pool, rmac_pool
from .preprocess import aspect_resize

OPTION = r"gem\d+(?:\.\d+)?|stage[1-7](?:w\d+(?:\.\d+)?)?|s\d{2,3}|rmac|pad|crop"


@dataclass(frozen=True)
class FeatureOptions:
    gem_p: float = GEM_P  # 1.0: average pooling
    stages: tuple[tuple[int, float], ...] = ()
    scales: tuple[int, ...] = ()  # extra input sizes
    rmac: bool = False
    resize: str = "squash"

    @classmethod
    def of(cls, spec: EffnetSpec, options: Sequence[str]) -> FeatureOptions:
        """The spec's own features, changed by each option in turn (`OPTION` syntax)."""
        opts = cls(gem_p=GEM_P if spec.pooling == "gem" else 1.0, stages=spec.extra_stages)
        for o in options:
            if m := re.fullmatch(r"gem(\d+(?:\.\d+)?)", o):
                opts = replace(opts, gem_p=float(m.group(1)))
            elif m := re.fullmatch(r"stage(\d)(?:w(\d+(?:\.\d+)?))?", o):
                opts = replace(opts, stages=(*opts.stages, (int(m.group(1)), float(m.group(2) or 1.0))))
            elif m := re.fullmatch(r"s(\d+)", o):
                opts = replace(opts, scales=(*opts.scales, int(m.group(1))))
            elif o == "rmac":
                opts = replace(opts, rmac=True)
            elif o in ("pad", "crop"):
                opts = replace(opts, resize=o)
            else:
                raise ValueError(f"unknown feature option {o!r}")
        return opts


class OptionsExtractor(BatchEmbedMixin):
    """An EfficientNet-Lite spec with FeatureOptions; `embed` resizes each original image to
    every scale (`embed_batch` only sees the model-size input and scales that up)."""

    def __init__(self, name: str, spec: EffnetSpec, options: FeatureOptions) -> None:
        self.name = name
        self.spec = spec
        self.options = options
        self.input_size = spec.input_size
        self.dim = replace(spec, extra_stages=options.stages).dim
        self._sessions: dict[int, object] = {}
        self._lock = threading.Lock()

    @property
    def draft_size(self) -> int | None:
        return max((self.input_size, *self.options.scales))

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return aspect_resize(image, self.input_size, self.options.resize)

    def embed_batch(self, inputs: np.ndarray) -> Features:
        batches = {self.input_size: inputs}
        for s in self.options.scales:
            batches[s] = np.stack([np.asarray(Image.fromarray(x).resize((s, s), Image.Resampling.BILINEAR)) for x in inputs])
        return Features(self._embed_sizes(batches))

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        sizes = (self.input_size, *self.options.scales)
        return self._embed_sizes({s: np.stack([aspect_resize(im, s, self.options.resize) for im in images]) for s in sizes})

    def _embed_sizes(self, batches: dict[int, np.ndarray]) -> np.ndarray:
        total = None
        for size, batch in batches.items():
            vec = self._embed_one_size(size, batch)
            total = vec if total is None else total + vec
        return l2_normalize(total)  # type: ignore[arg-type]

    def _embed_one_size(self, size: int, batch: np.ndarray) -> np.ndarray:
        o = self.options
        names = ["feature_map"] + [f"stage{k}" for k, _ in o.stages]
        outs = dict(zip(names, self._session(size).run(names, {"images": batch})))
        fmap = outs["feature_map"]
        if o.rmac:
            head = rmac_pool(fmap, math.inf)
        else:
            head = avg_pool(fmap) if o.gem_p == 1.0 else gem_pool(fmap, o.gem_p)
        parts = [l2_normalize(head)] + [w * l2_normalize(avg_pool(outs[f"stage{k}"])) for k, w in o.stages]
        return l2_normalize(np.hstack(parts))

    def _session(self, size: int):
        with self._lock:
            if size not in self._sessions:
                self._sessions[size] = taps_session(self.spec, size, tuple(sorted({k for k, _ in self.options.stages})))
            return self._sessions[size]


def taps_session(spec: EffnetSpec, size: int, stages: tuple[int, ...]):
    """A session of `spec`'s network at a `size` px input that outputs its last feature map
    and the named stages' outputs (built once, cached beside the exported models)."""
    import onnx

    path: Path = cache_dir() / "onnx" / f"{spec.name}-v{spec.export_version}-taps{''.join(map(str, stages))}-{size}.onnx"
    if not path.exists():
        model = build_effnet_lite(spec.arch, weights_path(spec), with_probs=False, with_feature_map=True,
                                  input_size=size, stage_maps=stages)
        write_atomically(path, lambda tmp: onnx.save(model, tmp))
    return onnx_session(path, cpu_threads())


def options_extractor(name: str, options: Sequence[str]) -> OptionsExtractor:
    from .effnet import EFFNET_SPECS, EFFNET_VARIANTS

    spec = EFFNET_SPECS.get(name) or EFFNET_VARIANTS.get(name)
    if spec is None:
        raise ValueError(f"feature options need an EfficientNet-Lite model, not {name!r}")
    return OptionsExtractor(f"{name}+{'+'.join(options)}", spec, FeatureOptions.of(spec, options))
