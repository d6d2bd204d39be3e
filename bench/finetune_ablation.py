"""Choose fine-tuning defaults by measurement: loss, frozen stages and resolution, each
trained for one epoch on the same seeded Fashion-MNIST subset and scored by validation
mAP@100 (held-out part of the subset) against the pretrained network at that resolution.

    python bench/finetune_ablation.py --limit 2000 --runs loss:supcon loss:triplet freeze:4 resolution:96

Each run varies one setting from the defaults (the input size defaults to the base model's,
224 px: name `resolution:64` to compare with the runs measured before that default); results go to bench/results/finetune_ablation.json
(merged with earlier runs)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lookalike.eval.datasets import load_fashion_mnist
from lookalike.training.finetune import FinetuneConfig, finetune

OUT = Path(__file__).parent / "results" / "finetune_ablation.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is not inflated by spinning)")
    ap.add_argument("--runs", nargs="+", default=["loss:supcon", "loss:cosface", "loss:arcface", "loss:triplet"],
                    help="runs of setting:value pairs, e.g. loss:triplet freeze:0 resolution:48,freeze:4")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = load_fashion_mnist("train")
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for run in args.runs:
        settings: dict[str, Any] = {}
        for pair in run.split(","):  # e.g. "loss:triplet" or "resolution:48,freeze:4"
            key, value = pair.split(":")
            default = getattr(FinetuneConfig(name="x"), key)
            settings[key] = type(default)(value) if default is not None else int(value)  # resolution, epochs
        config = FinetuneConfig(name="ablation", epochs=1, limit=args.limit, seed=args.seed, **settings)
        with tempfile.TemporaryDirectory() as cache:
            os.environ["LOOKALIKE_CACHE"] = cache
            t_wall, t_cpu = time.perf_counter(), time.process_time()
            m = finetune(config, data, "fashion-mnist train").manifest
            wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
        row = {"config": {k: v for k, v in asdict(config).items() if k != "name"},
               "val_map_at_100_pretrained": m["metrics"]["val_map_at_100_pretrained"],
               "val_map_at_100": m["history"][-1]["map_at_100"], "val_recall_at_1": m["history"][-1]["recall_at_1"],
               "loss_first": m["history"][-1]["first_loss"], "loss_mean": m["history"][-1]["loss"],
               "train_cpu_seconds": m["train_cpu_seconds"], "total_wall_seconds": round(wall, 1),
               "total_cpu_seconds": round(cpu, 1), "n_train": m["n_train"], "n_val": m["n_val"]}
        results[f"{run} limit={args.limit} seed={args.seed}"] = row
        print(f"{run:>18}: val mAP@100 {row['val_map_at_100_pretrained']:.3f} -> {row['val_map_at_100']:.3f}, "
              f"R@1 {row['val_recall_at_1']:.3f}, train {row['train_cpu_seconds']:.0f} CPU-s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
