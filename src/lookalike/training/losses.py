"""Metric-learning losses on L2-normalised embeddings. `make_loss` picks one by name; the
default was chosen by measurement (README, "Fine-tuning")."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InvalidQuery

LOSSES = ("supcon", "cosface", "arcface", "triplet")


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020), one view per image: each anchor
    pulls all same-class images in the batch and pushes the rest."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sim = emb @ emb.T / self.temperature
        self_mask = torch.eye(len(emb), dtype=torch.bool, device=emb.device)
        sim = sim.masked_fill(self_mask, -1e9)
        log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
        pos = (labels[:, None] == labels[None, :]) & ~self_mask
        n_pos = pos.sum(1)
        has_pos = n_pos > 0
        per_anchor = -(log_prob * pos).sum(1)[has_pos] / n_pos[has_pos]
        return per_anchor.mean()


class MarginSoftmaxLoss(nn.Module):
    """CosFace (additive cosine margin) or ArcFace (additive angular margin) over learnt
    class centres."""

    def __init__(self, dim: int, n_classes: int, kind: str, scale: float = 30.0, margin: float | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.scale = scale
        self.margin = margin if margin is not None else (0.35 if kind == "cosface" else 0.5)
        self.centres = nn.Parameter(torch.randn(n_classes, dim) * 0.01)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = emb @ F.normalize(self.centres, dim=1).T
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        if self.kind == "cosface":
            target = cos - self.margin
        else:
            theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
            # Past pi - m the angular margin would no longer be monotonic: fall back to CosFace-style.
            target = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                                 cos - self.margin * math.sin(self.margin))
        logits = torch.where(onehot, target, cos) * self.scale
        return F.cross_entropy(logits, labels)


class BatchHardTripletLoss(nn.Module):
    """Triplet loss with batch-hard mining (Hermans et al. 2017) on cosine distance."""

    def __init__(self, margin: float = 0.2) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = 1 - emb @ emb.T
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(emb), dtype=torch.bool, device=emb.device)
        hardest_pos = dist.masked_fill(~same | eye, -1).max(1).values
        hardest_neg = dist.masked_fill(same, 3).min(1).values
        valid = (same & ~eye).any(1) & (~same).any(1)
        if not bool(valid.any()):
            return emb.sum() * 0
        return F.relu(hardest_pos - hardest_neg + self.margin)[valid].mean()


def make_loss(name: str, dim: int, n_classes: int) -> nn.Module:
    if name == "supcon":
        return SupConLoss()
    if name in ("cosface", "arcface"):
        return MarginSoftmaxLoss(dim, n_classes, name)
    if name == "triplet":
        return BatchHardTripletLoss()
    raise InvalidQuery(f"unknown loss {name!r} (choose from {', '.join(LOSSES)})")
