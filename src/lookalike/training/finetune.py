"""The fine-tuning loop: seeded, validated every epoch (mAP@100 on a held-out split), the
best epoch kept, a checkpoint after every epoch so an interrupted run resumes."""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import cache_dir
from ..errors import Conflict, InvalidQuery, NotFound
from ..eval.datasets import LabelledImages
from ..models import list_models
from ..models.finetuned import model_dir
from .data import augment, balanced_batches, prepare_inputs, split_train_val
from .evaluate import leave_one_out
from .export import export_finetuned
from .losses import LOSSES, make_loss
from .network import EmbeddingNet, embed_inputs
from .resolution import MAX_RESOLUTION, MIN_RESOLUTION, base_size, choose_resolution

CHECKPOINT_SECONDS = 120.0  # also checkpoint inside long epochs, at most this much work lost
SAMPLES_PER_RUN = 60_000  # auto epochs: about this many training samples in total
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class FinetuneConfig:
    name: str
    base: str = "effnet-lite0"
    resolution: int | None = None  # None: from the base model and the images (training/resolution.py)
    epochs: int | None = None  # None: enough epochs for ~SAMPLES_PER_RUN samples (1..20)
    batch_size: int = 64
    lr: float = 3e-4
    freeze: int = 4  # stem + first k stages frozen (measured: as good as 2, 1.3x faster)
    loss: str = "supcon"
    proj_dim: int = 0  # 0: no projection, the embedding is the pooled 1280-d feature map
    seed: int = 0
    limit: int | None = None  # use a stratified random subset of this many images
    classes: list[str] | None = None  # train on these classes only
    val_fraction: float = 0.1

    def check(self) -> None:
        if not NAME_RE.match(self.name):
            raise InvalidQuery(f"bad model name {self.name!r}: use letters, digits, '.', '_' or '-' (max 64)")
        if self.loss not in LOSSES:
            raise InvalidQuery(f"unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        base_size(self.base)  # an unknown --base fails here, before any data is loaded
        if self.resolution is not None and not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION:
            raise InvalidQuery(f"--resolution must be between 32 and 640, got {self.resolution}")
        if self.batch_size < 4:
            raise InvalidQuery("--batch-size must be at least 4 (metric learning needs pairs)")


@dataclass
class TrainEvent:
    """What the trainer reports to its caller (the CLI draws Rich progress from these)."""

    kind: str  # "prepare", "start", "step", "epoch", "export"
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    loss: float | None = None
    val_map: float | None = None
    message: str = ""


@dataclass
class FinetuneResult:
    manifest: dict
    onnx_path: Path
    history: list[dict] = field(default_factory=list)
    model: EmbeddingNet | None = None  # the exported (best) network, in eval mode


def select_data(data: LabelledImages, config: FinetuneConfig) -> LabelledImages:
    """Restrict to `classes` (relabelled 0..C-1 in the given order) and to `limit` images."""
    if config.classes:
        lookup = {name.lower(): i for i, name in enumerate(data.class_names)}
        wanted = []
        for c in config.classes:
            key = c.strip().lower()
            if key.isdigit() and int(key) < len(data.class_names):
                wanted.append(int(key))
            elif key in lookup:
                wanted.append(lookup[key])
            else:
                raise InvalidQuery(f"unknown class {c!r} (classes: {', '.join(data.class_names)})")
        wanted = list(dict.fromkeys(wanted))
        if len(wanted) < 2:
            raise InvalidQuery("--classes needs at least two classes")
        keep = np.flatnonzero(np.isin(data.labels, wanted))
        sub = data.subset(keep)
        remap = {old: new for new, old in enumerate(wanted)}
        data = LabelledImages(np.array([remap[int(v)] for v in sub.labels], dtype=np.int64),
                              [data.class_names[i] for i in wanted], sub.pixels, sub.paths)
    present = np.unique(data.labels)
    if len(present) < 2:
        raise InvalidQuery("fine-tuning needs at least two classes with images")
    if config.limit is not None and config.limit < len(data):
        if config.limit < 4 * len(present):
            raise InvalidQuery(f"--limit {config.limit} is too small for {len(present)} classes (need {4 * len(present)})")
        rng = np.random.default_rng(config.seed)
        _, keep = split_train_val(data.labels, config.seed, fraction=config.limit / len(data), max_val=config.limit)
        keep = np.sort(rng.permutation(keep)[: config.limit])
        data = data.subset(keep)
    counts = np.bincount(data.labels)
    if (counts[counts > 0] < 3).any():
        raise InvalidQuery("every class needs at least 3 images (2 train, 1 validation)")
    return data


def _validate(model: EmbeddingNet, inputs: np.ndarray, labels: np.ndarray, device) -> dict:
    vecs = embed_inputs(model, inputs, device=device)
    res = leave_one_out(vecs, labels, np.arange(len(labels)))
    return {"map_at_100": res.map_at[100], "recall_at_1": res.recall_at[1]}


def _lr_at(step: int, total: int, base: float) -> float:
    """Linear warm-up over the first 5 % of steps, then cosine decay to 1 % of `base`."""
    warm = max(1, int(0.05 * total))
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def work_dir(name: str) -> Path:
    """Checkpoints of a run in progress (outside models/, so it never shows as a model)."""
    return cache_dir() / "training" / name


def check_run(config: FinetuneConfig, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse a run that cannot succeed before any data is loaded."""
    config.check()
    if config.name in {m.name for m in list_models() if m.kind != "fine-tuned"}:
        raise InvalidQuery(f"{config.name!r} is a bundled model's name; choose another --name")
    if (model_dir(config.name) / "manifest.json").exists() and not overwrite:
        raise Conflict(f"a fine-tuned model {config.name!r} already exists in {model_dir(config.name)} "
                             "(choose another --name, or --overwrite: libraries built with it become stale)")
    if resume and not (work_dir(config.name) / "last.pt").exists():
        raise NotFound(f"nothing to resume for {config.name!r} (no checkpoint in {work_dir(config.name)})")


def finetune(config: FinetuneConfig, data: LabelledImages, data_desc: str,
             on_event: Callable[[TrainEvent], None] | None = None, resume: bool = False,
             overwrite: bool = False, threads: int | None = None) -> FinetuneResult:
    """Train, validate each epoch, keep the best epoch, export it. `threads`: CPU threads
    for PyTorch (default: all cores; 1 wastes less CPU time on a machine busy with others)."""
    check_run(config, resume, overwrite)
    if threads:
        torch.set_num_threads(threads)
    emit = on_event or (lambda _e: None)
    wd = work_dir(config.name)
    last_path = wd / "last.pt"
    state = None
    if resume:
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        saved = dict(state["config"])
        if {**saved, "epochs": None} != {**asdict(config), "epochs": None}:
            diff = sorted(k for k in saved if saved[k] != asdict(config).get(k) and k != "epochs")
            raise Conflict(f"--resume with different settings than the interrupted run ({', '.join(diff)})")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = select_data(data, config)
    train_idx, val_idx = split_train_val(data.labels, config.seed, config.val_fraction)
    epochs = config.epochs or max(1, min(20, math.ceil(SAMPLES_PER_RUN / len(train_idx))))
    resolution, why = choose_resolution(config.resolution, config.base, data, config.seed)
    emit(TrainEvent("prepare", message=f"resizing {len(data)} images to {resolution}px ({why})"))
    inputs = prepare_inputs(data, resolution)
    train_x, train_y = inputs[train_idx], data.labels[train_idx]
    val_x, val_y = inputs[val_idx], data.labels[val_idx]
    n_classes = len(data.class_names)

    torch.manual_seed(config.seed)
    model = EmbeddingNet(config.base, config.freeze, config.proj_dim).to(device)
    loss_fn = make_loss(config.loss, model.dim, n_classes).to(device)
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0}]
    if list(loss_fn.parameters()):
        groups.append({"params": list(loss_fn.parameters()), "lr_scale": 10.0})  # class centres start random
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=1e-4)
    per_class = max(4, config.batch_size // n_classes)
    steps_per_epoch = math.ceil(len(train_idx) / config.batch_size)
    total_steps = epochs * steps_per_epoch

    if state is not None:
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, history = state["epoch"], state["history"]
        best, wall, cpu = state["best"], state["wall_seconds"], state["cpu_seconds"]
    else:
        start_epoch, wall, cpu = 0, 0.0, 0.0
        baseline = _validate(model, val_x, val_y, device)  # epoch 0: the pretrained network
        history = [{"epoch": 0, "loss": None, **baseline}]
        best = {"epoch": 0, "map_at_100": -1.0, "model": None}
    emit(TrainEvent("start", epochs=epochs, steps=total_steps, val_map=history[0]["map_at_100"],
                    message=f"{len(train_idx)} train / {len(val_idx)} validation images, {n_classes} classes, {device}"))
    wd.mkdir(parents=True, exist_ok=True)

    def save_checkpoint(epochs_done: int, **partial) -> None:
        ckpt = {"config": asdict(config), "epoch": epochs_done, "history": history, "best": best,
                "model": model.state_dict(), "loss": loss_fn.state_dict(), "optimizer": opt.state_dict(),
                "wall_seconds": wall + time.perf_counter() - t_wall, "cpu_seconds": cpu + time.process_time() - t_cpu,
                **partial}
        torch.save(ckpt, wd / "last.pt.tmp")
        os.replace(wd / "last.pt.tmp", last_path)  # atomic: an interrupt never leaves half a checkpoint

    for epoch in range(start_epoch, epochs):
        t_wall, t_cpu = time.perf_counter(), time.process_time()
        last_save = t_wall
        model.train()
        rng = np.random.default_rng([config.seed, epoch])
        gen = torch.Generator().manual_seed(config.seed * 1009 + epoch)
        torch.manual_seed(config.seed * 1009 + epoch)  # drop-connect draws from the global generator
        losses: list[float] = []
        skip = 0
        if state is not None and epoch == start_epoch and state.get("step_in_epoch"):
            # Resuming inside an epoch: the same seeded batches, minus those already trained on.
            skip, losses = state["step_in_epoch"], list(state["epoch_losses"])
            gen.set_state(state["gen_state"])
            torch.set_rng_state(state["torch_rng_state"])
        for i, batch in enumerate(balanced_batches(train_y, config.batch_size, rng, per_class)):
            if i < skip:
                continue
            step = epoch * steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, total_steps, config.lr) * g["lr_scale"]
            x = augment(torch.from_numpy(train_x[batch]).to(device), gen)
            y = torch.from_numpy(train_y[batch]).to(device)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            emit(TrainEvent("step", epoch + 1, epochs, step + 1, total_steps, loss=float(np.mean(losses[-20:]))))
            if time.perf_counter() - last_save > CHECKPOINT_SECONDS and i + 1 < steps_per_epoch:
                save_checkpoint(epoch, step_in_epoch=i + 1, epoch_losses=losses, gen_state=gen.get_state(),
                                torch_rng_state=torch.get_rng_state())
                last_save = time.perf_counter()
        metrics = _validate(model, val_x, val_y, device)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "first_loss": losses[0], **metrics})
        if metrics["map_at_100"] > best["map_at_100"]:
            best = {"epoch": epoch + 1, "map_at_100": metrics["map_at_100"],
                    "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        save_checkpoint(epoch + 1)
        wall += time.perf_counter() - t_wall
        cpu += time.process_time() - t_cpu
        emit(TrainEvent("epoch", epoch + 1, epochs, step=(epoch + 1) * steps_per_epoch, steps=total_steps,
                        loss=history[-1]["loss"], val_map=metrics["map_at_100"]))

    model.load_state_dict(best["model"])
    model.eval()
    emit(TrainEvent("export", message=f"exporting epoch {best['epoch']} to ONNX"))
    manifest = {
        "name": config.name, "base": config.base, "data": data_desc, "classes": data.class_names,
        "resolution": resolution, "dim": model.dim, "loss": config.loss, "freeze": config.freeze,
        "projection": config.proj_dim, "epochs": epochs, "batch_size": config.batch_size, "lr": config.lr,
        "seed": config.seed, "limit": config.limit, "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
        "best_epoch": best["epoch"],
        "metrics": {"val_map_at_100": best["map_at_100"],
                    "val_recall_at_1": history[best["epoch"]]["recall_at_1"],
                    "val_map_at_100_pretrained": history[0]["map_at_100"],
                    "val_recall_at_1_pretrained": history[0]["recall_at_1"]},
        "history": history,
        "train_wall_seconds": round(wall, 1), "train_cpu_seconds": round(cpu, 1),
        "device": str(device), "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    onnx_path = export_finetuned(model, manifest, check_inputs=val_x[:16])
    (wd / "config.json").write_text(json.dumps(asdict(config), indent=1))
    return FinetuneResult(json.loads((onnx_path.parent / "manifest.json").read_text()), Path(onnx_path), history, model)
