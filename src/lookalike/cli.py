"""`lookalike` command line: a thin shell over `Library`."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .config import default_library
from .engine import Library
from .errors import LookalikeError
from .models import list_models
from .store import SearchFilter

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Lookalike: find images that look alike, by what they show.")
out = Console()
err = Console(stderr=True)

LibraryOpt = typer.Option(None, "--library", "-l", help="Library directory [default: $LOOKALIKE_LIBRARY or ./lookalike-library]")
StoreOpt = typer.Option(None, "--store", envvar="LOOKALIKE_STORE", help="Store backend [default: embedded in the library directory]")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """User errors become one line on stderr and exit code 1, never a traceback."""
    try:
        yield
    except LookalikeError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted: every finished batch is saved; run the same command again to finish")
        raise typer.Exit(130) from None


def _open(library: Optional[Path], store: Optional[str], model: Optional[str] = None, create: bool = False) -> Library:
    return Library.open(library or default_library(), model=model, store=store, create=create)


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} img/s" if task.speed else "– img/s", style="progress.data.speed")


@app.command()
def index(
    paths: List[Path] = typer.Argument(..., help="Image files and folders (searched recursively)."),
    library: Optional[Path] = LibraryOpt,
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help="Feature extractor, only when creating a library [default: effnet-lite0]; see `lookalike models`."),
    prune: bool = typer.Option(False, "--prune", help="Also forget indexed images under PATHS whose files are gone."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per model batch."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Decoding threads [default: CPU count]."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Index images: new files are added, changed ones updated, moved ones recognised."""
    with user_errors():
        with _open(library, store, model, create=True) as lib:
            columns = [SpinnerColumn(), TextColumn("indexing"), BarColumn(), MofNCompleteColumn(),
                       RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
            with Progress(*columns, console=err, transient=False, disable=as_json) as bar:
                task = bar.add_task("index", total=None)
                report = lib.add(paths, prune=prune, batch_size=batch_size, workers=workers,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
            if as_json:
                out.print_json(data=report.to_dict())
                return
            err.print(f"added {report.added}, updated {report.updated}, moved {report.moved}, "
                      f"unchanged {report.unchanged}, removed {report.removed}, failed {len(report.failed)} "
                      f"— {report.embedded} embedded in {report.seconds:.1f} s "
                      f"({report.images_per_second:.1f} img/s); library has {len(lib)} images", highlight=False)
            for path, reason in report.failed:
                err.print(f"  skipped {path}: {reason}", highlight=False, markup=False)


@app.command()
def search(
    query: str = typer.Argument(
        ..., help="Image path, http(s) URL, '-' for image bytes on stdin, id:N, or an indexed image's path (more like this)."),
    library: Optional[Path] = LibraryOpt,
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of results."),
    min_score: Optional[float] = typer.Option(None, "--min-score", help="Drop results below this cosine similarity."),
    under: Optional[Path] = typer.Option(None, "--under", help="Only images under this folder."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find the indexed images that look most like QUERY."""
    with user_errors():
        with _open(library, store) as lib:
            source: object = sys.stdin.buffer.read() if query == "-" else query
            where = SearchFilter(str(under.expanduser().absolute()).rstrip("/") + "/") if under else None
            t0 = time.perf_counter()
            hits = lib.search(source, k=k, min_score=min_score, where=where)  # type: ignore[arg-type]
            took_ms = (time.perf_counter() - t0) * 1000
            label = "-" if query == "-" else query
            if as_json:
                print(json.dumps({"query": label, "model": lib.model, "took_ms": round(took_ms, 3),
                                  "results": [h.to_dict() for h in hits]}))
                return
            table = Table(title=f"{len(hits)} results for {label} ({took_ms:.1f} ms, {lib.model})", title_justify="left")
            for col, just in (("rank", "right"), ("score", "right"), ("id", "right"), ("path", "left")):
                table.add_column(col, justify=just)  # type: ignore[arg-type]
            for h in hits:
                table.add_row(str(h.rank), f"{h.score:.4f}", str(h.id), h.path)
            out.print(table)


@app.command()
def info(library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt, as_json: bool = JsonOpt) -> None:
    """Show a library's image count, model, dimension and size on disk."""
    with user_errors():
        with _open(library, store) as lib:
            data = lib.info()
            if as_json:
                print(json.dumps(data))
                return
            for key, value in data.items():
                if key == "size_bytes":
                    key, value = "size on disk", f"{value / 1e6:.2f} MB"
                out.print(f"{key:>13}: {value}", highlight=False)


@app.command()
def remove(paths: List[Path] = typer.Argument(..., help="Indexed files, or folders whose images to forget."),
           library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt) -> None:
    """Forget images (the files themselves are not touched)."""
    with user_errors():
        with _open(library, store) as lib:
            n = lib.remove(paths)
            err.print(f"removed {n} images; library has {len(lib)}")


@app.command()
def models(as_json: bool = JsonOpt) -> None:
    """List the available feature extractors."""
    infos = list_models()
    if as_json:
        print(json.dumps([{"name": m.name, "dim": m.dim, "kind": m.kind, "description": m.description} for m in infos]))
        return
    table = Table("name", "dim", "kind", "description")
    for m in infos:
        table.add_row(m.name, str(m.dim), m.kind, m.description)
    out.print(table)


@app.command()
def finetune(
    data: str = typer.Argument(..., help="ROOT (a folder of class folders: ROOT/<class>/<images>) or 'fashion-mnist'."),
    name: str = typer.Option(..., "--name", "-n", help="Name of the new model (then `--model NAME` everywhere)."),
    base: str = typer.Option("effnet-lite0", "--base", help="Bundled model to start from."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Epochs [default: ~60k samples in all, 1-20 epochs]."),
    batch_size: int = typer.Option(64, "--batch-size", min=4, help="Images per training step."),
    resolution: int = typer.Option(64, "--resolution", help="Model input size in pixels (part of the model)."),
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
        from .eval.datasets import load_fashion_mnist, load_folder_dataset
        from .training.finetune import FinetuneConfig, check_run
        from .training.finetune import finetune as run_finetune

        config = FinetuneConfig(name=name, base=base, resolution=resolution, epochs=epochs, batch_size=batch_size,
                                lr=lr, freeze=freeze, loss=loss, proj_dim=dim, seed=seed, limit=limit,
                                classes=[c for c in classes.split(",") if c.strip()] if classes else None)
        check_run(config, resume, overwrite)
        if data == "fashion-mnist":
            dataset, desc = load_fashion_mnist("train"), "fashion-mnist train"
        elif Path(data).is_dir():
            dataset, desc = load_folder_dataset(data), str(Path(data).absolute())
        else:
            raise LookalikeError(f"{data}: not a folder of class folders, nor 'fashion-mnist'")
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
        with Progress(*columns, console=err, disable=as_json) as bar:
            task = bar.add_task("preparing", total=None, status="")
            val_maps: list[str] = []

            def on_event(e) -> None:
                if e.kind == "prepare":
                    bar.update(task, description=e.message)
                elif e.kind == "start":
                    val_maps.append(f"{e.val_map:.3f}")
                    bar.update(task, description="training", total=e.steps, status=f"val mAP@100 {val_maps[0]} (pretrained)")
                    err.print(f"{e.message}; {e.epochs} epochs; pretrained val mAP@100 {e.val_map:.3f}", highlight=False)
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
                  f"use it with --model {m['name']}", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
