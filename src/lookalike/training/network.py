"""The network being fine-tuned: a bundled EfficientNet-Lite's feature extractor, early
stages optionally frozen, an optional linear projection, L2-normalised output."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidQuery
from ..models.effnet import EFFNET_SPECS, FEATURE_DIM, load_torch_model
from .data import normalise

# EfficientNet-Lite0/2 have 7 stages of MBConv blocks; block index where each stage ends.
STAGE_ENDS = {16: (1, 3, 5, 8, 11, 15, 16), 20: (2, 4, 6, 9, 13, 19, 20)}


class EmbeddingNet(nn.Module):
    """Normalised float NCHW -> L2-normalised embedding. `frozen_stages` k >= 1 freezes the
    stem and the first k block stages (run without gradients, batch norm in eval mode)."""

    def __init__(self, base: str, frozen_stages: int = 0, proj_dim: int = 0) -> None:
        super().__init__()
        if base not in EFFNET_SPECS:
            raise InvalidQuery(f"unknown base model {base!r} (choose from {', '.join(EFFNET_SPECS)})")
        self.net = load_torch_model(EFFNET_SPECS[base])
        self.net._fc = nn.Identity()  # the ImageNet classifier means nothing after fine-tuning
        ends = STAGE_ENDS[len(self.net._blocks)]
        if not 0 <= frozen_stages <= len(ends):
            raise InvalidQuery(f"--freeze must be between 0 and {len(ends)} (stages), got {frozen_stages}")
        self.frozen_stages = frozen_stages
        self.n_frozen_blocks = ends[frozen_stages - 1] if frozen_stages else 0
        self.proj = nn.Linear(FEATURE_DIM, proj_dim, bias=False) if proj_dim else None
        self.dim = proj_dim or FEATURE_DIM
        for p in self.frozen_parameters():
            p.requires_grad_(False)

    def frozen_modules(self) -> list[nn.Module]:
        if not self.frozen_stages:
            return []
        return [self.net._conv_stem, self.net._bn0, *self.net._blocks[: self.n_frozen_blocks]]

    def frozen_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.frozen_modules() for p in m.parameters()]

    def train(self, mode: bool = True) -> EmbeddingNet:
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        # Batch norm keeps its ImageNet statistics (its scale and shift still learn): batch
        # statistics of small augmented batches differ from the running ones used at search
        # time, and a short fine-tune never re-estimates them well (measured: loss rose).
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        n_blocks = len(net._blocks)
        rate = net._global_params.drop_connect_rate or 0.0

        def run(x: torch.Tensor, start: int, end: int) -> torch.Tensor:
            if start == 0 and end > 0:
                x = net._swish(net._bn0(net._conv_stem(x)))
            for idx in range(start, end):
                x = net._blocks[idx](x, drop_connect_rate=rate * idx / n_blocks if rate else None)
            return x

        start = 0
        if self.frozen_stages:
            with torch.no_grad():
                x = run(x, 0, self.n_frozen_blocks).detach()
            start = self.n_frozen_blocks
        x = run(x, start, n_blocks) if start < n_blocks else x
        pooled = net._swish(net._bn1(net._conv_head(x))).mean((2, 3))
        if self.proj is not None:
            pooled = self.proj(pooled)
        return F.normalize(pooled, dim=1)


class UInt8Input(nn.Module):
    """The ONNX graph contract: uint8 NHWC images in, L2-normalised `embedding` out."""

    def __init__(self, model: EmbeddingNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(normalise(images))


@torch.no_grad()
def embed_inputs(model: EmbeddingNet, inputs, batch_size: int = 256, device: str | torch.device = "cpu"):
    """uint8 NHWC numpy array -> float32 numpy embeddings, in eval mode."""
    import numpy as np

    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(inputs), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(inputs[s:s + batch_size])).to(device)
        out.append(model(normalise(batch)).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, model.dim), dtype=np.float32)
