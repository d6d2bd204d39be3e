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
    ef: Optional[int] = typer.Option(
        None, "--ef", min=1, help="ANN candidates per query on large libraries: higher is more exact, slower [default: 96]."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Find the indexed images that look most like QUERY."""
    with user_errors():
        with _open(library, store) as lib:
            source: object = sys.stdin.buffer.read() if query == "-" else query
            where = SearchFilter(str(under.expanduser().absolute()).rstrip("/") + "/") if under else None
            t0 = time.perf_counter()
            hits = lib.search(source, k=k, min_score=min_score, where=where, ef=ef)  # type: ignore[arg-type]
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
