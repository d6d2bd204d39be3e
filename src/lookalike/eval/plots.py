"""PNG plots of an evaluation run (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..extras import require
from .harness import EvalResult, MethodResult, image_at
from .robustness import RobustnessResult

THUMB = 56
GAP = 4
LABEL_W = 150


def _pyplot():
    matplotlib = require("matplotlib", feature="evaluation plots", extra="eval")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def map_bar(methods: list[MethodResult], path: Path, title: str) -> Path:
    plt = _pyplot()
    names = [m.name for m in methods]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(names) + 2), 3.6), dpi=90)
    colours = ["#3b7dd8" if m.kind != "handcrafted" else "#d8873b" for m in methods]
    bars = ax.bar(x - 0.2, [m.metrics.map_at[100] for m in methods], 0.4, color=colours, label="mAP@100")
    ax.bar(x + 0.2, [m.metrics.map_full or 0 for m in methods], 0.4, color=colours, alpha=0.45, label="mAP (full ranking)")
    for b, m in zip(bars, methods):
        ax.annotate(f"{m.metrics.map_at[100]:.3f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean average precision")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def pr_curves(methods: list[MethodResult], path: Path, title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=90)
    levels = np.linspace(0, 1, len(methods[0].pr_curve) if methods else 0)
    for m in methods:
        ax.plot(levels, m.pr_curve, marker=".", linestyle="-" if m.kind != "handcrafted" else "--", label=m.name)
    ax.set_xlabel("recall")
    ax.set_ylabel("interpolated precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def robustness_heatmap(rob: RobustnessResult, path: Path, source: str = "all") -> Path:
    plt = _pyplot()
    methods = list(rob.recall)
    fig, axes = plt.subplots(1, 2, figsize=(2 + 0.75 * len(rob.transforms) * 2, 1.2 + 0.42 * len(methods)), dpi=90)
    for ax, k in zip(axes, (1, 10)):
        grid = np.array([[rob.recall[m][t][source].get(k, np.nan) for t in rob.transforms] for m in methods])
        ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(rob.transforms)), rob.transforms, rotation=40, ha="right", fontsize=7)
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set_title(f"near-duplicate recall@{k} ({source})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def example_grid(result: EvalResult, path: Path) -> Path:
    """For each example query: one row per method with the query and its top results;
    relevant results (same class) framed green, others red."""
    data = result.gallery
    methods = [m for m in result.methods if m.derived_from is None]  # variants would crowd the grid
    rows = [(q, m) for q in result.example_queries for m in methods]
    cols = 1 + max((len(m.examples[0]) for m in methods if m.examples), default=0)
    width = LABEL_W + cols * (THUMB + GAP) + GAP
    height = len(rows) * (THUMB + GAP) + GAP
    canvas = Image.new("RGB", (width, max(height, 1)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    thumbs: dict[int, Image.Image] = {}

    def thumb(i: int) -> Image.Image:
        if i not in thumbs:
            im = image_at(data, i).convert("RGB")
            im.thumbnail((THUMB - 6, THUMB - 6), Image.Resampling.LANCZOS)
            if max(im.size) < THUMB - 6:  # tiny images (28 px) are enlarged to be seen
                scale = (THUMB - 6) / max(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.NEAREST)
            thumbs[i] = im
        return thumbs[i]

    for r, (q, m) in enumerate(rows):
        y = GAP + r * (THUMB + GAP)
        qi = result.example_queries.index(q)
        draw.text((4, y + 8), m.name, fill="black", font=font)
        draw.text((4, y + 26), f"query: {data.class_names[data.labels[q]]}"[:24], fill="#555555", font=font)
        for c, idx in enumerate([q] + m.examples[qi]):
            x = LABEL_W + c * (THUMB + GAP)
            colour = "#3b7dd8" if c == 0 else ("#2e9d3a" if data.labels[idx] == data.labels[q] else "#d23c3c")
            draw.rectangle((x, y, x + THUMB - 1, y + THUMB - 1), outline=colour, width=3)
            t = thumb(int(idx))
            canvas.paste(t, (x + (THUMB - t.width) // 2, y + (THUMB - t.height) // 2))
    # A 256-colour palette keeps the PNG small enough to commit next to the README.
    canvas.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
