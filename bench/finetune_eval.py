"""Pretrained vs fine-tuned retrieval on the Fashion-MNIST test split (never seen in training):
gallery = the test images (optionally only some classes), a seeded sample of them as queries,
mAP@100 and recall@1 from lookalike.eval.metrics.

    python bench/finetune_eval.py --models effnet-lite0 fashion-v1                  # all 10 classes
    python bench/finetune_eval.py --models effnet-lite0 fashion-first5 --classes 5,6,7,8,9   # disjoint

`--pretrained-at 64` adds the pretrained network exported at 64 px, to separate the effect
of the resolution from the effect of training. Writes bench/results/finetune_eval.json.

`--domains` measures on the suite's category domains instead (eval/domains.py): each
domain's images are split in half per class (seeded), each run fine-tunes on one half and
the other, unseen half is searched (every image a query against the rest of that half,
mAP@10 as in `lookalike eval suite`), beside the pretrained suite default:

    python bench/finetune_eval.py --domains products icons digits \
        --runs resolution:64 resolution:224,epochs:5

Runs are setting:value pairs of FinetuneConfig ("default": the defaults as shipped); trained
models are kept in --cache so a repeated run is only evaluated. Writes
bench/results/finetune_domains.json (merged with earlier runs)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.eval.datasets import load_fashion_mnist
from lookalike.models import get_extractor
from lookalike.models.onnx_extractor import OnnxExtractor
from lookalike.training.evaluate import embed_all, evaluate_extractor

OUT = Path(__file__).parent / "results" / "finetune_eval.json"
DOMAINS_OUT = Path(__file__).parent / "results" / "finetune_domains.json"


def pretrained_at(resolution: int, directory: Path) -> OnnxExtractor:
    from lookalike.models.effnet import EFFNET_SPECS, FEATURE_DIM, build_export_module, export_onnx, load_torch_model

    path = export_onnx(build_export_module(load_torch_model(EFFNET_SPECS["effnet-lite0"]), with_probs=False),
                       directory / f"lite0-{resolution}.onnx", resolution, with_probs=False)
    return OnnxExtractor(f"effnet-lite0@{resolution}px", path, resolution, FEATURE_DIM)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["effnet-lite0", "fashion-v1"])
    ap.add_argument("--classes", default=None, help="comma-separated class indices to keep (gallery and queries)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--gallery", type=int, default=None, help="seeded subset of the test split (default: all 10,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pretrained-at", type=int, default=None, metavar="PX")
    ap.add_argument("--label", default=None, help="key for this protocol in the JSON")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--domains", nargs="+", default=None,
                    help="suite domains: products, icons, digits; icons-256: the same icons at 256 px")
    ap.add_argument("--runs", nargs="+", default=["resolution:64", "default"],
                    help="with --domains: fine-tuning runs, e.g. resolution:64 resolution:224,epochs:5 default")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/finetune-cache"), help="with --domains: trained models")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is not inflated by spinning)")
    args = ap.parse_args()
    if args.domains:
        return domain_halves(args)
    args.out = args.out or OUT

    data = load_fashion_mnist("test")
    if args.classes:
        data = data.subset(np.flatnonzero(np.isin(data.labels, [int(c) for c in args.classes.split(",")])))
    if args.gallery and args.gallery < len(data):
        data = data.subset(np.sort(np.random.default_rng(args.seed).choice(len(data), args.gallery, replace=False)))
    label = args.label or f"classes={args.classes or 'all'}"
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        extractors = [get_extractor(m) for m in args.models]
        if args.pretrained_at:
            extractors.insert(1, pretrained_at(args.pretrained_at, Path(tmp)))
        for ex in extractors:
            t0 = time.perf_counter()
            vecs = embed_all(ex, data)
            res = evaluate_extractor(ex, data, args.queries, args.seed, vectors=vecs)
            rows[ex.name] = {"map_at_100": res.map_at[100], "recall_at_1": res.recall_at[1],
                             "resolution": ex.input_size, "dim": ex.dim,  # type: ignore[attr-defined]
                             "embed_seconds": round(time.perf_counter() - t0, 1)}
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = {**results.get(label, {}).get("models", {}), **rows}  # models evaluated earlier under this label stay
    base = rows.get("effnet-lite0", rows[extractors[0].name])["map_at_100"]
    print(f"Fashion-MNIST test, {label}: gallery {len(data)}, {min(args.queries, len(data))} queries (seed {args.seed})")
    print("| model | input | mAP@100 | recall@1 | mAP@100 gain (points) |\n|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['resolution']} px | {r['map_at_100']:.3f} | {r['recall_at_1']:.3f} | "
              f"{100 * (r['map_at_100'] - base):+.1f} |")
    results[label] = {"gallery": len(data), "queries": min(args.queries, len(data)), "seed": args.seed, "models": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))


def run_settings(run: str) -> dict:
    """"resolution:224,epochs:5" -> {"resolution": 224, "epochs": 5}; "default" -> {}."""
    from lookalike.training.finetune import FinetuneConfig

    settings: dict = {}
    for pair in run.split(",") if run != "default" else []:
        key, value = pair.split(":")
        default = getattr(FinetuneConfig(name="x"), key)
        settings[key] = type(default)(value) if default is not None and key != "resolution" else int(value)
    return settings


def halves(domain) -> tuple:
    """The domain's gallery as LabelledImages, split per class into a fine-tuning half and an
    unseen half (seeded)."""
    from lookalike.eval.datasets import LabelledImages
    from lookalike.training.data import split_train_val

    pixels = np.stack([np.asarray(im.convert("RGB")) for im in domain.gallery])
    labels = np.asarray(domain.gallery_labels, dtype=np.int64)
    data = LabelledImages(labels, [str(c) for c in range(int(labels.max()) + 1)], pixels=pixels)
    train, unseen = split_train_val(labels, seed=0, fraction=0.5, max_val=len(labels))
    return data.subset(train), data.subset(unseen)


def map10(vecs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Every image of the unseen half queries the rest of it: mAP@10, recall@1."""
    from lookalike.training.evaluate import leave_one_out

    res = leave_one_out(vecs, labels, np.arange(len(labels)), k=10)
    return res.map_at[10], res.recall_at[1]


def domain_halves(args) -> None:
    import os

    import torch

    from lookalike.eval.domains import DOMAINS, ICON_THEME, icons

    domains = {**DOMAINS, "icons-256": lambda seed: icons(seed=seed, root=ICON_THEME.parent / "256x256")}  # large images
    from lookalike.training.finetune import FinetuneConfig, finetune

    torch.set_num_threads(args.threads)
    out = args.out or DOMAINS_OUT
    results = json.loads(out.read_text()) if out.exists() else {}
    user_cache = os.environ.get("LOOKALIKE_CACHE")
    for name in args.domains:
        train, unseen = halves(domains[name](seed=args.seed))
        rows = results.setdefault(name, {"image_px": int(train.pixels.shape[1]), "train": len(train),
                                         "unseen": len(unseen), "classes": len(np.unique(train.labels)), "runs": {}})["runs"]
        if "pretrained" not in rows:
            ex = get_extractor("effnet-lite0")  # the suite's default: GeM at 224 px
            m, r1 = map10(embed_all(ex, unseen), unseen.labels)
            rows["pretrained"] = {"map10": m, "recall1": r1, "resolution": ex.input_size}  # type: ignore[attr-defined]
        for run in args.runs:
            settings = run_settings(run)
            model = f"halves-{name}-{run.replace(':', '').replace(',', '-')}"
            os.environ["LOOKALIKE_CACHE"] = str(args.cache)  # trained models stay out of the user's cache
            try:
                config = FinetuneConfig(name=model, seed=args.seed, **settings)
                t_cpu = time.process_time()
                manifest = finetune(config, train, f"{name} half", overwrite=True, threads=args.threads).manifest \
                    if run not in rows else None
                if manifest is not None:
                    ex = get_extractor(model)
                    m, r1 = map10(embed_all(ex, unseen), unseen.labels)
                    rows[run] = {"map10": m, "recall1": r1, "resolution": manifest["resolution"],
                                 "epochs": manifest["epochs"], "best_epoch": manifest["best_epoch"],
                                 "freeze": manifest["freeze"], "loss": manifest["loss"], "lr": manifest["lr"],
                                 "train_cpu_seconds": manifest["train_cpu_seconds"],
                                 "cpu_seconds_per_epoch": round(manifest["train_cpu_seconds"] / manifest["epochs"], 2),
                                 "total_cpu_seconds": round(time.process_time() - t_cpu, 1)}
            finally:
                if user_cache is None:
                    os.environ.pop("LOOKALIKE_CACHE", None)
                else:
                    os.environ["LOOKALIKE_CACHE"] = user_cache
            r = rows[run]
            print(f"{name:>8} {run:>28}: mAP@10 {rows['pretrained']['map10']:.3f} -> {r['map10']:.3f} "
                  f"({r['resolution']} px, {r['cpu_seconds_per_epoch']:.1f} CPU-s/epoch)", flush=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
    print(domains_table(results, args.domains))


def domains_table(results: dict, domains: list[str]) -> str:
    """Markdown: mAP@10 on each domain's unseen half per run, the change against pretrained."""
    runs = list(dict.fromkeys(r for d in domains for r in results[d]["runs"]))
    lines = ["| run | " + " | ".join(f"{d} ({results[d]['image_px']} px)" for d in domains) + " | mean |",
             "|---|" + "---:|" * (len(domains) + 1)]
    for run in runs:
        cells, vals, base = [], [], []
        for d in domains:
            r = results[d]["runs"].get(run)
            p = results[d]["runs"]["pretrained"]["map10"]
            cells.append("-" if r is None else f"{r['map10']:.3f} ({100 * (r['map10'] - p):+.1f})")
            if r is not None:
                vals.append(r["map10"])
                base.append(p)
        mean = f"{np.mean(vals):.3f} ({100 * (np.mean(vals) - np.mean(base)):+.1f})" if len(vals) == len(domains) else "-"
        lines.append(f"| {run} | " + " | ".join(cells) + f" | {mean} |")
    lines += ["", "| run | " + " | ".join(f"{d} CPU-s/epoch" for d in domains) + " |", "|---|" + "---:|" * len(domains)]
    for run in runs[1:]:  # training time, 1 thread (the first run is the pretrained network)
        cells = [f"{results[d]['runs'][run]['cpu_seconds_per_epoch']:.1f}" if run in results[d]["runs"] else "-"
                 for d in domains]
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
