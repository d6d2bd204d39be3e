"""Build the EfficientNet-Lite ONNX graph straight from the shipped checkpoint, without PyTorch.

Produces the same graph contract as the torch export (see onnx_extractor.py): input
`images` uint8 [n, S, S, 3]; outputs `embedding` (L2-normalised, average or GeM pooled)
and `probs` (softmax of the ImageNet classifier on average-pooled features). Batch norm is
folded into the preceding convolutions, so the graph is only Conv, Clip (ReLU6) and Add.
The architecture table is the one of efficientnet_lite_pytorch (itself from TensorFlow's
efficientnet_lite_builder.py), vendored so that the torch-dependent package is not needed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import read_state_dict

OPSET = 17
BN_EPS = 1e-3
GEM_P = 3.0  # generalised-mean exponent (Radenovic et al.): between average (1) and max (inf)

# (repeats, kernel, stride, expand ratio, input filters, output filters) for Lite0; the
# other sizes scale filters by `width` and repeats by `depth`, except the first and last
# stage and the stem/head, which Lite keeps fixed ("fix_head_stem").
LITE_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# arch -> (width coefficient, depth coefficient, native resolution)
LITE_PARAMS = {
    "efficientnet-lite0": (1.0, 1.0, 224),
    "efficientnet-lite1": (1.0, 1.1, 240),
    "efficientnet-lite2": (1.1, 1.2, 260),
    "efficientnet-lite3": (1.2, 1.4, 280),
    "efficientnet-lite4": (1.4, 1.8, 300),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(new + divisor if new < 0.9 * scaled else new)  # never round down by more than 10%


@dataclass(frozen=True)
class Block:
    kernel: int
    stride: int
    expand: int
    inp: int
    out: int
    stage: int = 0  # 1..7: the row of LITE_STAGES the block belongs to


def lite_blocks(arch: str) -> list[Block]:
    width, depth, _ = LITE_PARAMS[arch]
    blocks = []
    last = len(LITE_STAGES) - 1
    for i, (repeats, k, s, e, inp, out) in enumerate(LITE_STAGES):
        inp, out = round_filters(inp, width), round_filters(out, width)
        if i in (0, last):
            inp = 32 if i == 0 else inp  # the fixed stem's width
        else:
            repeats = int(math.ceil(depth * repeats))
        blocks.append(Block(k, s, e, inp, out, i + 1))
        blocks.extend(Block(k, 1, e, out, out, i + 1) for _ in range(repeats - 1))
    return blocks


def same_pads(size: int, kernel: int, stride: int) -> tuple[list[int], int]:
    """TensorFlow 'SAME' padding for a known input size (extra pixel bottom/right), as
    ONNX [top, left, bottom, right], and the output size."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return [before, before, total - before, total - before], out


class _GraphBuilder:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.w = weights
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        self._n += 1
        out = f"{op.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self._n}", **attrs))
        return out

    def conv_bn(self, x: str, conv: str, bn: str, stride: int, size: int, groups: int = 1) -> tuple[str, int]:
        """Conv (no bias) + batch norm folded into one Conv with bias."""
        kernel = self.w[f"{conv}.weight"].astype(np.float64)
        scale = self.w[f"{bn}.weight"] / np.sqrt(self.w[f"{bn}.running_var"].astype(np.float64) + BN_EPS)
        weight = (kernel * scale[:, None, None, None]).astype(np.float32)
        bias = (self.w[f"{bn}.bias"] - self.w[f"{bn}.running_mean"] * scale).astype(np.float32)
        k = kernel.shape[-1]
        pads, out_size = same_pads(size, k, stride)
        y = self.node("Conv", [x, self.const(f"{conv}.w", weight), self.const(f"{conv}.b", bias)],
                      kernel_shape=[k, k], strides=[stride, stride], pads=pads, group=groups)
        return y, out_size

    def relu6(self, x: str) -> str:
        return self.node("Clip", [x, "zero", "six"])

    def l2_normalize(self, x: str) -> str:
        norm = self.node("ReduceL2", [x], axes=[1], keepdims=1)
        return self.node("Div", [x, self.node("Max", [norm, "norm_eps"])])  # as F.normalize


def build_effnet_lite(arch: str, weights: str | Path | dict[str, np.ndarray], pooling: str = "avg", with_probs: bool = True,
                      with_feature_map: bool = False, input_size: int | None = None, gem_p: float = GEM_P,
                      stage_maps: tuple[int, ...] = (), extra_stages: tuple[tuple[int, float], ...] = ()):
    """The ONNX ModelProto for one EfficientNet-Lite checkpoint. `with_feature_map` adds the
    last feature map as output `feature_map` [n, 1280, h, w] (for `explain`); `stage_maps`
    adds the output of each named stage (1..7 of LITE_STAGES) as `stage{k}` [n, c, h, w]
    (for bench/feature_search.py). `extra_stages` ((stage, weight), ...) makes the embedding
    multi-layer: [L2(pooled head), weight * L2(average of the stage's output), ...], L2-normalised
    again, so it has 1280 + the stages' channels dimensions. `input_size` (default: the native one) fixes the input side, as
    TensorFlow's SAME padding depends on it. The other outputs are the same either way.
    `weights`: the checkpoint's path, or its state dict already read."""
    from onnx import TensorProto, checker, helper

    if pooling not in ("avg", "gem"):
        raise ValueError(f"unknown pooling {pooling!r}")
    _, _, native = LITE_PARAMS[arch]
    size = native = input_size or native
    blocks = lite_blocks(arch)
    last_of_stage = {b.stage: i for i, b in enumerate(blocks)}
    if any(k not in last_of_stage for k in (*stage_maps, *(k for k, _ in extra_stages))):
        raise ValueError(f"stages must be in 1..{len(LITE_STAGES)}, got {stage_maps} {extra_stages}")
    taps: list = []
    stage_out: dict[int, tuple[str, int]] = {}  # stage -> (its output, channels)
    g = _GraphBuilder(weights if isinstance(weights, dict) else read_state_dict(weights))
    g.const("zero", np.array(0.0, np.float32))
    g.const("six", np.array(6.0, np.float32))

    x = g.node("Cast", ["images"], to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], perm=[0, 3, 1, 2])
    x = g.node("Sub", [x, g.const("mean", np.array(127.0, np.float32))])
    x = g.node("Div", [x, g.const("std", np.array(128.0, np.float32))])  # the shipped weights' preprocessing

    x, size = g.conv_bn(x, "_conv_stem", "_bn0", 2, size)
    x = g.relu6(x)
    for i, b in enumerate(blocks):
        p = f"_blocks.{i}"
        y = x
        if b.expand != 1:
            y, _ = g.conv_bn(y, f"{p}._expand_conv", f"{p}._bn0", 1, size)
            y = g.relu6(y)
        channels = b.inp * b.expand
        y, out_size = g.conv_bn(y, f"{p}._depthwise_conv", f"{p}._bn1", b.stride, size, groups=channels)
        y = g.relu6(y)
        y, _ = g.conv_bn(y, f"{p}._project_conv", f"{p}._bn2", 1, out_size)
        x = g.node("Add", [y, x]) if b.stride == 1 and b.inp == b.out else y
        size = out_size
        if last_of_stage[b.stage] == i:
            stage_out[b.stage] = (x, b.out)
            if b.stage in stage_maps:
                g.nodes.append(helper.make_node("Identity", [x], [f"stage{b.stage}"], name=f"stage{b.stage}"))
                taps.append(helper.make_tensor_value_info(f"stage{b.stage}", TensorProto.FLOAT, ["n", b.out, size, size]))
    fmap, _ = g.conv_bn(x, "_conv_head", "_bn1", 1, size)
    fmap = g.relu6(fmap)

    pooled = g.node("ReduceMean", [fmap], axes=[2, 3], keepdims=0)
    if pooling == "gem":
        gem = g.node("Max", [fmap, g.const("gem_eps", np.array(1e-6, np.float32))])
        gem = g.node("Pow", [gem, g.const("gem_p", np.array(gem_p, np.float32))])
        gem = g.node("ReduceMean", [gem], axes=[2, 3], keepdims=0)
        emb = g.node("Pow", [gem, g.const("gem_inv_p", np.array(1.0 / gem_p, np.float32))])
    else:
        emb = pooled
    g.const("norm_eps", np.array(1e-12, np.float32))
    dim = 1280
    if extra_stages:  # each part normalised first, so the weights alone set their shares
        parts = [g.l2_normalize(emb)]
        for k, weight in extra_stages:
            out, channels = stage_out[k]
            part = g.l2_normalize(g.node("ReduceMean", [out], axes=[2, 3], keepdims=0))
            parts.append(g.node("Mul", [part, g.const(f"stage{k}_weight", np.array(weight, np.float32))]))
            dim += channels
        emb = g.node("Concat", parts, axis=1)
    g.nodes.append(helper.make_node("Identity", [g.l2_normalize(emb)], ["embedding"], name="embedding"))
    outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])]
    if with_probs:
        logits = g.node("Gemm", [pooled, g.const("_fc.weight", g.w["_fc.weight"]), g.const("_fc.bias", g.w["_fc.bias"])],
                        transB=1)
        g.nodes.append(helper.make_node("Softmax", [logits], ["probs"], name="probs", axis=1))
        outputs.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", int(g.w["_fc.bias"].shape[0])]))
    if with_feature_map:
        g.nodes.append(helper.make_node("Identity", [fmap], ["feature_map"], name="feature_map"))
        outputs.append(helper.make_tensor_value_info("feature_map", TensorProto.FLOAT, ["n", 1280, size, size]))
    outputs.extend(taps)

    graph = helper.make_graph(
        g.nodes, f"lookalike-{arch}",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["n", native, native, 3])],
        outputs, initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="lookalike")
    model.ir_version = 8  # readable by every ONNX Runtime this project supports
    checker.check_model(model)
    return model
