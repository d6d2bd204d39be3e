"""Pretrained vs fine-tuned retrieval on the Fashion-MNIST test split (never seen in training):
gallery = the test images (optionally only some classes), a seeded sample of them as queries,
mAP@100 and recall@1 from lookalike.eval.metrics.

    python bench/finetune_eval.py --models effnet-lite0 fashion-v1                  # all 10 classes
    python bench/finetune_eval.py --models effnet-lite0 fashion-first5 --classes 5,6,7,8,9   # disjoint

`--pretrained-at 64` adds the pretrained network exported at 64 px, to separate the effect
of the resolution from the effect of training. Writes bench/results/finetune_eval.json."""

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
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

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


if __name__ == "__main__":
    main()
