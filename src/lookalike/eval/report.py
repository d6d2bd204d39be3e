"""Writes an evaluation run as report.md + results.json + PNG plots in one directory."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import Conflict
from . import plots
from .harness import EvalResult
from .robustness import RobustnessResult

PLOTS = {"map": "map_by_method.png", "pr": "precision_recall.png", "examples": "example_queries.png",
         "robustness": "robustness.png"}


def retrieval_table(result: EvalResult) -> str:
    lines = ["| method | kind | dim | mAP@100 | mAP | recall@1 | recall@5 | recall@10 | P@10 | img/s | query ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in result.methods:
        r = m.metrics
        lines.append(f"| {m.name} | {m.kind} | {m.dim} | {r.map_at[100]:.3f} | {(r.map_full or 0):.3f} | "
                     f"{r.recall_at.get(1, 0):.3f} | {r.recall_at.get(5, 0):.3f} | {r.recall_at.get(10, 0):.3f} | "
                     f"{r.precision_at.get(10, 0):.3f} | {m.images_per_second:.1f} | {m.query_ms:.1f} |")
    return "\n".join(lines)


def per_class_table(result: EvalResult) -> str:
    names = [m.name for m in result.methods]
    lines = ["| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    classes = sorted({c for m in result.methods for c in m.metrics.per_class_ap})
    for c in classes:
        cells = [f"{m.metrics.per_class_ap[c]:.3f}" if c in m.metrics.per_class_ap else "–" for m in result.methods]
        lines.append(f"| {result.gallery.class_names[c]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def robustness_table(rob: RobustnessResult, source: str = "all") -> str:
    """Rows: transforms; cells: recall@1 / recall@10 per method."""
    methods = list(rob.recall)
    lines = ["| transform | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for t in rob.transforms:
        cells = [f"{rob.recall[m][t][source][1]:.2f} / {rob.recall[m][t][source][10]:.2f}" for m in methods]
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    means = [sum(rob.recall[m][t][source][1] for t in rob.transforms) / len(rob.transforms) for m in methods]
    means10 = [sum(rob.recall[m][t][source][10] for t in rob.transforms) / len(rob.transforms) for m in methods]
    lines.append("| **mean** | " + " | ".join(f"**{a:.2f} / {b:.2f}**" for a, b in zip(means, means10)) + " |")
    return "\n".join(lines)


def write_report(result: EvalResult, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise Conflict(f"--out {out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = result.config
    title = f"{result.dataset_name}: {len(result.gallery)} gallery images, {len(result.query_indices)} queries"
    written = [plots.map_bar(result.methods, out_dir / PLOTS["map"], title),
               plots.pr_curves(result.methods, out_dir / PLOTS["pr"], title)]
    if result.example_queries:
        written.append(plots.example_grid(result, out_dir / PLOTS["examples"]))
    md = [
        "# Lookalike evaluation", "",
        f"Dataset: {result.dataset_name}; gallery {len(result.gallery)} images"
        + (f" (seeded sample, --limit {cfg.limit})" if cfg.limit else "")
        + f"; {len(result.query_indices)} queries drawn from the gallery with seed {cfg.seed} (each query excluded "
        f"from its own results; relevant = same class). Run took {result.seconds:.0f} s.", "",
        "## Retrieval", "",
        "mAP@100 and mAP over the full ranking; recall@k = queries with at least one relevant image in the top k; "
        "P@10 = precision in the top 10; img/s = gallery images decoded and embedded per second; "
        "query ms = median time to embed one query and rank the whole gallery.", "",
        retrieval_table(result), "",
        f"![mAP by method]({PLOTS['map']})", "", f"![precision-recall]({PLOTS['pr']})", "",
        "## Per-class AP@100", "", per_class_table(result), "",
    ]
    if result.example_queries:
        md += ["## Example queries", "",
               f"Each row: a method, the query (blue) and its top {len(result.methods[0].examples[0])} results; "
               "green = same class, red = another class.", "", f"![example queries]({PLOTS['examples']})", ""]
    if result.robustness is not None:
        rob = result.robustness
        written.append(plots.robustness_heatmap(rob, out_dir / PLOTS["robustness"]))
        md += ["## Robustness (near-duplicate recall@1 / recall@10)", "",
               f"Each query is an edited copy of a gallery image ({rob.n_queries.get('photos', 0)} bundled photos, "
               f"added to the gallery, and {rob.n_queries.get('dataset', 0)} dataset images); a hit is the unedited "
               "original.", "", "### All queries", "", robustness_table(rob, "all"), "",
               f"![robustness]({PLOTS['robustness']})", ""]
        for src, label in (("photos", "Bundled photos only"), ("dataset", "Dataset images only")):
            if rob.n_queries.get(src):
                md += [f"### {label}", "", robustness_table(rob, src), ""]
    (out_dir / "report.md").write_text("\n".join(md), encoding="utf-8")
    (out_dir / "results.json").write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    return [out_dir / "report.md", out_dir / "results.json", *written]
