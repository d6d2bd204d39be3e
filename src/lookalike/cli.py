"""`lookalike` command line: a thin shell over `Library`."""

from __future__ import annotations

import contextlib
import csv
import datetime
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
from .engine.duplicates import TIERS, DuplicateThresholds
from .engine.scan import printable
from .engine.tags import match_labels
from .errors import LookalikeError
from .models import list_models
from .store import SearchFilter, open_store

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Lookalike: find images that look alike, by what they show.")
out = Console()
err = Console(stderr=True)

LibraryOpt = typer.Option(None, "--library", "-l", help="Library directory [default: $LOOKALIKE_LIBRARY or ./lookalike-library]")
StoreOpt = typer.Option(None, "--store", envvar="LOOKALIKE_STORE", help="Store backend [default: embedded in the library directory]")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
TokenOpt = typer.Option(None, "--milvus-token", envvar="LOOKALIKE_MILVUS_TOKEN",
                        help="Token (or user:password) for a milvus:http(s)://... store.")


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


def _open(library: Optional[Path], store: Optional[str], model: Optional[str] = None, create: bool = False,
          token: Optional[str] = None) -> Library:
    directory = library or default_library()
    return Library.open(directory, model=model, store=_store(store, directory, token), create=create)


def _store(store: Optional[str], directory: Path, token: Optional[str]):
    """A store spec, opened here only when it needs options such as a Milvus token."""
    if token and store and store.startswith("milvus:"):
        return open_store(store, directory, token=token)
    return store


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
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Index images: new files are added, changed ones updated, moved ones recognised."""
    with user_errors():
        with _open(library, store, model, create=True, token=milvus_token) as lib:
            columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
            with Progress(*columns, console=err, transient=False, disable=as_json) as bar:
                task = bar.add_task("indexing", total=None)
                report = lib.add(paths, prune=prune, batch_size=batch_size, workers=workers, sync_index=False,
                                 progress=lambda done, total: bar.update(task, completed=done, total=total))
                # Large libraries: build/update the ANN index now rather than on the first search.
                sync: list = []

                def index_progress(done: int, total: int) -> None:
                    if not sync:
                        sync.append(bar.add_task("search index", total=total))
                    bar.update(sync[0], completed=done, total=total)

                lib.sync_index(progress=index_progress)
            if as_json:
                out.print_json(data=report.to_dict())
                return
            err.print(f"added {report.added}, updated {report.updated}, moved {report.moved}, "
                      f"unchanged {report.unchanged}, removed {report.removed}, failed {len(report.failed)} "
                      f"— {report.embedded} embedded in {report.seconds:.1f} s "
                      f"({report.images_per_second:.1f} img/s); library has {len(lib)} images", highlight=False)
            if report.videos:
                err.print(f"videos: {report.videos} indexed as {report.frames} frames", highlight=False)
            if report.skipped_types:
                err.print(report.skipped_summary(), highlight=False, markup=False, soft_wrap=True)
            for path, reason in report.failed:
                err.print(f"  skipped {printable(path)}: {reason}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def search(
    ctx: typer.Context,
    query: Optional[str] = typer.Argument(
        None, help="Image path, http(s) URL, '-' for image bytes on stdin, id:N, or an indexed image's path (more like this). "
                   "Optional with --text."),
    library: Optional[Path] = LibraryOpt,
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of results."),
    min_score: Optional[float] = typer.Option(
        None, "--min-score", help="Drop results below this score (cosine similarity; classifier confidence for --text alone)."),
    text: Optional[str] = typer.Option(
        None, "--text", "-t", help="Images tagged with an ImageNet label naming this (e.g. 'cat', 'espresso'; commas = any of). "
                                   "Alone: ranked by the classifier's confidence; with QUERY: a filter on the image search."),
    under: Optional[Path] = typer.Option(None, "--under", help="Only images under this folder."),
    since: Optional[str] = typer.Option(
        None, "--since", help="Only files modified on or after this date (YYYY-MM-DD[THH:MM], local time)."),
    until: Optional[str] = typer.Option(
        None, "--until", help="Only files modified on or before this date (a date alone includes that whole day)."),
    ef: Optional[int] = typer.Option(
        None, "--ef", min=1, help="ANN candidates per query on large libraries: higher is more exact, slower [default: 96]."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Find the indexed images that look most like QUERY, or that are tagged --text, or both."""
    if query is None and text is None:
        ctx.fail("Missing argument 'QUERY' (give an image query, --text, or both).")
    where = _filter(under, _date_option(since, "--since"), _date_option(until, "--until", end_of_day=True))
    with user_errors():
        if text is not None and not match_labels(text):
            raise LookalikeError(f"no ImageNet label matches {text!r}: try a common noun such as 'cat', 'espresso' or 'rocket'")
        with _open(library, store, token=milvus_token) as lib:
            t0 = time.perf_counter()
            if query is None:
                hits = lib.search_text(text or "", k=k, min_score=min_score, where=where)
                label = text or ""
            else:
                source: object = sys.stdin.buffer.read() if query == "-" else query
                hits = lib.search(source, k=k, min_score=min_score, where=where, text=text, ef=ef)  # type: ignore[arg-type]
                label = "-" if query == "-" else printable(query, controls=False)
            took_ms = (time.perf_counter() - t0) * 1000
            if as_json:
                print(json.dumps({"query": label, "model": lib.model, "took_ms": round(took_ms, 3),
                                  "results": [h.to_dict() for h in hits]}))
                return
            title = f"{len(hits)} results for {label}" + (f" tagged {text!r}" if query is not None and text else "")
            table = Table(title=f"{title} ({took_ms:.1f} ms, {lib.model})", title_justify="left")
            score_name = "confidence" if query is None else "score"
            for col, just in (("rank", "right"), (score_name, "right"), ("id", "right"), ("path", "left")):
                table.add_column(col, justify=just)  # type: ignore[arg-type]
            for h in hits:
                table.add_row(str(h.rank), f"{h.score:.4f}", str(h.id), printable(h.path))
            out.print(table)


def _date_option(value: Optional[str], name: str, end_of_day: bool = False) -> Optional[float]:
    """A local date or date-time -> Unix seconds; a date alone as --until covers the whole day."""
    if value is None:
        return None
    try:
        if len(value.strip()) == 10:
            day = datetime.date.fromisoformat(value.strip())
            start = datetime.datetime.combine(day, datetime.time())
            moment = start + datetime.timedelta(days=1) - datetime.timedelta(microseconds=1) if end_of_day else start
        else:
            moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM", param_hint=name) from None
    return moment.timestamp()


def _filter(under: Optional[Path], since: Optional[float], until: Optional[float]) -> Optional[SearchFilter]:
    prefix = str(under.expanduser().absolute()).rstrip("/") + "/" if under else None
    where = SearchFilter(path_prefix=prefix, min_mtime=since, max_mtime=until)
    return None if where.is_empty() else where


@app.command()
def duplicates(
    ctx: typer.Context,
    library: Optional[Path] = LibraryOpt,
    tier: Optional[List[str]] = typer.Option(
        None, "--tier", help=f"Report only this tier (repeatable): {', '.join(TIERS)} [default: all]."),
    near_cosine: float = typer.Option(DuplicateThresholds.near_cosine, "--near-cosine", min=-1.0, max=1.0,
                                      help="Near-duplicates: least cosine similarity of the CNN features."),
    near_coverage: float = typer.Option(DuplicateThresholds.near_min_coverage, "--near-coverage", min=0.0, max=1.0,
                                        help="Near-duplicates: least share of each image the other must show (crops)."),
    similar_cosine: float = typer.Option(DuplicateThresholds.similar_cosine, "--similar-cosine", min=-1.0, max=1.0,
                                         help="Similar shots: least cosine similarity."),
    neighbours: int = typer.Option(DuplicateThresholds.neighbours, "--neighbours", min=1,
                                   help="Nearest images examined per image."),
    under: Optional[Path] = typer.Option(None, "--under", help="Only images under this folder."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV: one row per image (group, tier, id, path, score, width, height, size)."),
) -> None:
    """Find exact copies, near-duplicates (re-encoded, resized, lightly cropped) and similar shots."""
    tiers = list(tier) if tier else list(TIERS)
    bad = [t for t in tiers if t not in TIERS]
    if bad:
        raise typer.BadParameter(f"{bad[0]!r} is not one of {', '.join(TIERS)}", param_hint="--tier")
    if as_json and as_csv:
        ctx.fail("choose one of --json and --csv")
    thresholds = DuplicateThresholds(near_cosine=near_cosine, similar_cosine=similar_cosine, neighbours=neighbours,
                                     near_min_coverage=near_coverage)
    with user_errors():
        with _open(library, store, token=milvus_token) as lib:
            columns = [SpinnerColumn(), TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
            with Progress(*columns, console=err, transient=True, disable=as_json or as_csv) as bar:
                tasks: dict[str, object] = {}

                def progress(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=total)
                    bar.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

                report = lib.duplicates(thresholds, tiers, where=_filter(under, None, None), progress=progress)
            if as_json:
                print(json.dumps(report.to_dict()))
                return
            if as_csv:
                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow(["group", "tier", "id", "path", "score", "width", "height", "size"])
                for g in report.groups:
                    for m in g.members:
                        writer.writerow([g.group, g.tier, m.id, m.path, m.score, m.width, m.height, m.size])
                return
            table = Table("group", "tier", "score", "pixels", "bytes", "path", title_justify="left",
                          title=f"{len(report.groups)} groups among {report.images} images ({report.seconds:.1f} s)")
            for g in report.groups:
                for n, m in enumerate(g.members):
                    table.add_row(str(g.group) if n == 0 else "", g.tier if n == 0 else "", f"{m.score:.4f}",
                                  f"{m.width}x{m.height}", f"{m.size:,}", m.path, end_section=n == len(g.members) - 1)
            out.print(table)
            counts = report.counts()
            err.print(", ".join(f"{counts[t]} {t}" for t in TIERS if t in tiers) + " groups; the first image of each "
                      "group has the most pixels; score = cosine similarity to it", highlight=False)
            for path in report.unreadable:
                err.print(f"  could not re-read {path} to check for near-duplicates (run `lookalike index --prune`)",
                          highlight=False, markup=False)


@app.command()
def info(library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt, as_json: bool = JsonOpt,
         milvus_token: Optional[str] = TokenOpt) -> None:
    """Show a library's image count, model, dimension and size on disk."""
    with user_errors():
        with _open(library, store, token=milvus_token) as lib:
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
           library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt,
           milvus_token: Optional[str] = TokenOpt) -> None:
    """Forget images (the files themselves are not touched)."""
    with user_errors():
        with _open(library, store, token=milvus_token) as lib:
            n = lib.remove(paths)
            err.print(f"removed {n} images; library has {len(lib)}")


@app.command()
def migrate(
    source: str = typer.Option(..., "--from", help="Source: a library directory or milvus:URI[#collection]."),
    target: str = typer.Option(..., "--to", help="Target (must be empty): a library directory or milvus:URI[#collection]."),
    library: Optional[Path] = typer.Option(
        None, "--library", "-l", help="Directory for a Milvus side's model state [default: the directory side, else $LOOKALIKE_LIBRARY]."),
    milvus_token: Optional[str] = TokenOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Copy a library between stores (embedded <-> Milvus) without re-embedding; ids are kept."""
    from .engine.migrate import migrate as run_migrate

    def side(spec: str) -> tuple[Path, Optional[str]]:
        if spec.startswith("milvus:"):
            plain = next((s for s in (source, target) if not s.startswith("milvus:")), None)
            return (library or (Path(plain).expanduser() if plain else default_library())), spec
        return Path(spec).expanduser(), None

    with user_errors():
        (src_dir, src_store), (dst_dir, dst_store) = side(source), side(target)
        if (src_dir, src_store) == (dst_dir, dst_store):
            raise LookalikeError("--from and --to are the same library")
        with _open(src_dir, src_store, token=milvus_token) as src, \
                _open(dst_dir, dst_store, src.model, create=True, token=milvus_token) as dst:
            columns = [SpinnerColumn(), TextColumn("copying"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                       TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
            with Progress(*columns, console=err, disable=as_json) as bar:
                task = bar.add_task("migrate", total=None)
                report = run_migrate(src, dst, lambda done, total: bar.update(task, completed=done, total=total))
            if as_json:
                print(json.dumps({"copied": report.copied, "model": report.model, "seconds": round(report.seconds, 3)}))
                return
            err.print(f"copied {report.copied} images ({report.model}) from {source} to {target} "
                      f"in {report.seconds:.1f} s; ids kept", highlight=False)


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
def serve(
    library: Optional[Path] = LibraryOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    allow_anonymous_writes: bool = typer.Option(
        False, "--allow-anonymous-writes", help="Allow uploads and deletes without $LOOKALIKE_API_KEY on a non-loopback address."),
    max_upload_mb: Optional[float] = typer.Option(
        None, "--max-upload-mb", envvar="LOOKALIKE_MAX_UPLOAD_MB", min=0.001, help="Largest request body in MB [default: 20]."),
    no_url_queries: bool = typer.Option(False, "--no-url-queries", help="Refuse searches that make the server download a URL."),
    store: Optional[str] = StoreOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Serve the web page and the REST API (OpenAPI docs at /docs) for a library."""
    import os

    with user_errors():
        from .api.app import API_KEY_ENV, create_app
        from .api.guard import is_loopback

        if not os.environ.get(API_KEY_ENV) and not is_loopback(host) and not allow_anonymous_writes:
            raise LookalikeError(f"refusing to serve on {host} without ${API_KEY_ENV}: anyone could upload and delete images; "
                                 f"set ${API_KEY_ENV} or pass --allow-anonymous-writes")
        directory = library or default_library()
        web = create_app(directory, _store(store, directory, milvus_token),
                         max_upload_bytes=int(max_upload_mb * 1_000_000) if max_upload_mb else None,
                         url_queries=not no_url_queries)
        import uvicorn

        shown = f"[{host}]" if ":" in host else host
        err.print(f"serving {web.state.service.lib.directory} ({len(web.state.service.lib)} images) "
                  f"on http://{shown}:{port}/  (API docs: /docs)", highlight=False)
        uvicorn.run(web, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
@app.command("eval")
def eval_(
    dataset: str = typer.Argument(
        ..., help="'fashion-mnist' (Debian's dataset-fashion-mnist, test split) or a folder ROOT/<class>/<images>."),
    methods: str = typer.Option("effnet-lite0,effnet-lite2,color-hist,texture,sift-vlad", "--methods",
                                help="Comma-separated model names (see `lookalike models`)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=2, help="Use a seeded sample of N gallery images (quick runs)."),
    queries: int = typer.Option(1000, "--queries", min=1, help="Queries: a seeded sample of the gallery."),
    out_dir: Path = typer.Option(Path("eval-report"), "--out", help="Directory for report.md, results.json and PNG plots."),
    robustness: bool = typer.Option(False, "--robustness", help="Also measure near-duplicate recall under 12 image edits."),
    robustness_queries: int = typer.Option(100, "--robustness-queries", min=1,
                                           help="Dataset images edited per transform (plus every bundled photo)."),
    whiten: Optional[str] = typer.Option(None, "--whiten", help="e.g. 128,256,512: also score each deep method "
                                         "PCA-whitened to these dims, learned on Fashion-MNIST train."),
    whiten_train: int = typer.Option(5000, "--whiten-train", min=2, help="Fashion-MNIST train images the whitening learns from."),
    whiten_methods: Optional[str] = typer.Option(None, "--whiten-methods",
                                                 help="Comma-separated methods to whiten [default: every deep one]."),
    seed: int = typer.Option(0, "--seed", help="Seed for the gallery sample, queries and edits."),
) -> None:
    """Measure retrieval quality (mAP, recall@k), speed and robustness of feature extractors."""
    from .eval.harness import EvalConfig, run_eval
    from .eval.report import retrieval_table, write_report

    with user_errors():
        try:
            dims = tuple(int(d) for d in whiten.split(",") if d.strip()) if whiten else ()
        except ValueError:
            raise LookalikeError(f"--whiten takes comma-separated integers, not {whiten!r}") from None
        config = EvalConfig(dataset, [m.strip() for m in methods.split(",") if m.strip()], limit, queries, seed,
                            robustness, robustness_queries, dims, whiten_train,
                            tuple(m.strip() for m in whiten_methods.split(",")) if whiten_methods else None)
        columns = [SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
        with Progress(*columns, console=err) as bar:
            tasks: dict[str, object] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

            result = run_eval(config, progress)
        files = write_report(result, out_dir)
        out.print(retrieval_table(result), highlight=False, markup=False)
        err.print(f"wrote {', '.join(str(f) for f in files)}", highlight=False, soft_wrap=True)


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
