"""`lookalike finetune`: metric-learning fine-tuning of a bundled model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import NotFound
from .app import JsonOpt, app, err, user_errors
from .progress import progress_bar


@app.command()
def finetune(
    data: str = typer.Argument(..., help="ROOT (a folder of class folders: ROOT/<class>/<images>) or 'fashion-mnist'."),
    name: str = typer.Option(..., "--name", "-n", help="Name of the new model (then `--model NAME` everywhere)."),
    base: str = typer.Option("effnet-lite0", "--base", help="Bundled model to start from."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs [default: ~60k samples in all, 1-20 epochs]."),
    batch_size: int = typer.Option(64, "--batch-size", min=4, help="Images per training step."),
    resolution: Optional[int] = typer.Option(
        None, "--resolution", help="Model input size in pixels (part of the model) [default: the base model's input "
        "size (224 for effnet-lite0) for images at least that large; smaller images: their median longer side "
        "rounded up to a multiple of 32, at least 64]."),
    freeze: int = typer.Option(4, "--freeze", min=0, help="Freeze the stem and the first N of 7 stages."),
    loss: str = typer.Option("supcon", "--loss", help="supcon, cosface, arcface or triplet."),
    lr: float = typer.Option(3e-4, "--lr", min=0.0, help="Peak learning rate (AdamW, warm-up then cosine)."),
    dim: int = typer.Option(0, "--dim", min=0, help="Add a linear projection to DIM (0: keep the 1280-d features)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on a stratified random subset of N images."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Comma-separated class names or indices to train on."),
    seed: int = typer.Option(0, "--seed", help="Random seed (split, batches, augmentation, initialisation)."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run of the same --name and settings."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing fine-tuned model of that name."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for training [default: all cores]."),
    as_json: bool = JsonOpt,
) -> None:
    """Fine-tune a bundled model on labelled images; it becomes a model named NAME."""
    with user_errors():
        from ..eval.datasets import load_fashion_mnist, load_folder_dataset
        from ..training.finetune import FinetuneConfig, check_run
        from ..training.finetune import finetune as run_finetune

        config = FinetuneConfig(name=name, base=base, resolution=resolution, epochs=epochs, batch_size=batch_size,
                                lr=lr, freeze=freeze, loss=loss, proj_dim=dim, seed=seed, limit=limit,
                                classes=[c for c in classes.split(",") if c.strip()] if classes else None)
        check_run(config, resume, overwrite)
        if data == "fashion-mnist":
            dataset, desc = load_fashion_mnist("train"), "fashion-mnist train"
        elif Path(data).is_dir():
            dataset, desc = load_folder_dataset(data), str(Path(data).absolute())
        else:
            raise NotFound(f"{data}: not a folder of class folders, nor 'fashion-mnist'")
        with progress_bar(err, status=True, disable=as_json) as bar:
            task = bar.add_task("preparing", total=None, status="")
            val_maps: list[str] = []

            def on_event(e) -> None:
                if e.kind == "prepare":
                    bar.update(task, description=e.message)
                    err.print(e.message, highlight=False, markup=False)
                elif e.kind == "start":
                    val_maps.append(f"{e.val_map:.3f}")
                    bar.update(task, description="training", total=e.steps, status=f"val mAP@100 {val_maps[0]} (pretrained)")
                    err.print(f"{e.message}; {e.epochs} epochs; pretrained val mAP@100 {e.val_map:.3f}", highlight=False, markup=False)
                elif e.kind == "step":
                    bar.update(task, completed=e.step, description=f"epoch {e.epoch}/{e.epochs}",
                               status=f"loss {e.loss:.3f}  val mAP@100 {' > '.join(val_maps[-3:])}")
                    if not err.is_terminal and e.step % max(1, e.steps // 50) == 0:  # logs get a line every 2 %
                        err.print(f"step {e.step}/{e.steps} loss {e.loss:.3f}", highlight=False)
                elif e.kind == "epoch":
                    val_maps.append(f"{e.val_map:.3f}")
                    err.print(f"epoch {e.epoch}/{e.epochs}: loss {e.loss:.3f}, val mAP@100 {e.val_map:.3f}", highlight=False)
                elif e.kind == "export":
                    bar.update(task, description=e.message)

            result = run_finetune(config, dataset, desc, on_event=on_event, resume=resume,
                                  overwrite=overwrite, threads=threads)
        m = result.manifest
        if as_json:
            print(json.dumps({k: v for k, v in m.items() if k != "history"}))
            return
        metrics = m["metrics"]
        err.print(f"saved {m['name']} to {result.onnx_path.parent} (epoch {m['best_epoch']}): val mAP@100 "
                  f"{metrics['val_map_at_100_pretrained']:.3f} -> {metrics['val_map_at_100']:.3f}, "
                  f"trained in {m['train_wall_seconds']:.0f} s ({m['train_cpu_seconds']:.0f} s CPU); "
                  f"use it with --model {m['name']}", highlight=False, markup=False)
