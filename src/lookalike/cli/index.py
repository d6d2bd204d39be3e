"""`lookalike index` and `lookalike remove`: adding and forgetting images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Optional

import typer

from ..config import DEFAULT_MODEL, default_library, default_store
from ..errors import LookalikeError, NotFound
from .app import EXIT_USER_ERROR, JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, err, open_library, out, user_errors
from .progress import progress_bar
from .render import plural


@app.command()
def index(
    paths: List[Path] = typer.Argument(..., help="Image files and folders (searched recursively)."),
    library: Optional[Path] = LibraryOpt,
    model: Optional[str] = typer.Option(
        None, "--model", "-m", help=f"Feature extractor, only when creating a library [default: {DEFAULT_MODEL}]; see `lookalike models`."),
    prune: bool = typer.Option(False, "--prune", help="Also forget indexed images under PATHS whose files are gone."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per model batch."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Decoding threads [default: CPU count]."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
    ray: Optional[str] = typer.Option(
        None, "--ray", metavar="ADDRESS|local",
        help="Read and embed the images on a Ray cluster: its head's host:port (run this on a node of the cluster), "
             "or `local` for a one-node cluster started and stopped here. Needs the `ray` extra."),
) -> None:
    """Index images: new files are added, changed ones updated, moved ones recognised."""
    with user_errors():
        from ..engine.scan import printable

        missing = [p for p in paths if not os.path.lexists(os.path.expanduser(p))]
        if len(missing) == len(paths):  # nothing to index: fail before a library is created
            raise NotFound(f"{printable(str(missing[0]))}: no such file or directory")
        if ray is not None:  # a missing `ray` extra: one line before the library or a progress bar appears
            from ..engine.distributed import check_installed

            check_installed()
        directory = (library or default_library()).expanduser()
        fresh = not directory.exists() and (store or default_store()) in (None, "embedded")
        try:
            with open_library(library, store, model, create=True, token=milvus_token) as lib:
                report = _index(lib, paths, prune, batch_size, workers, as_json, ray)
                total = len(lib)
        except (LookalikeError, KeyboardInterrupt):
            if fresh:
                _drop_if_empty(directory)
            raise
        if as_json:
            out.print_json(data=report.to_dict())
        else:
            err.print(f"added {report.added}, updated {report.updated}, moved {report.moved}, "
                      f"unchanged {report.unchanged}, removed {report.removed}, failed {len(report.failed)} "
                      f"— {report.embedded} embedded in {report.seconds:.1f} s "
                      f"({report.images_per_second:.1f} img/s); library has {plural(total, 'image')}", highlight=False)
            if report.videos:
                err.print(f"videos: {report.videos} indexed as {report.frames} frames", highlight=False)
            if report.skipped_types:
                err.print(report.skipped_summary(), highlight=False, markup=False, soft_wrap=True)
            for path, reason in report.failed:
                err.print(f"  skipped {printable(path)}: {reason}", highlight=False, markup=False, soft_wrap=True)
        if missing:
            err.print(f"error: {plural(len(missing), 'path')} not found: {', '.join(printable(str(p)) for p in missing)}",
                      highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_USER_ERROR)


def _index(lib, paths: List[Path], prune: bool, batch_size: int, workers: Optional[int], quiet: bool,
           ray: Optional[str] = None):
    with progress_bar(err, rate=True, disable=quiet) as bar:
        task = bar.add_task("indexing" if ray is None else "indexing on Ray", total=None)
        report = lib.add(paths, prune=prune, batch_size=batch_size, workers=workers, sync_index=False, ray=ray,
                         progress=lambda done, total: bar.update(task, completed=done, total=total))
        # Large libraries: build/update the ANN index now rather than on the first search.
        sync: list = []

        def index_progress(done: int, total: int) -> None:
            if not sync:
                sync.append(bar.add_task("search index", total=total))
            bar.update(sync[0], completed=done, total=total)

        lib.sync_index(progress=index_progress)
    return report


def _drop_if_empty(directory: Path) -> None:
    """A failed first `index` leaves no library behind (it created the directory itself)."""
    from ..engine import Library

    try:
        with Library.open(directory, create=False) as lib:
            empty = len(lib) == 0
    except LookalikeError:
        empty = True
    if empty and directory.is_dir():
        shutil.rmtree(directory, ignore_errors=True)


@app.command()
def remove(paths: List[Path] = typer.Argument(..., help="Indexed files, or folders whose images to forget."),
           library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt,
           milvus_token: Optional[str] = TokenOpt) -> None:
    """Forget images (the files themselves are not touched)."""
    with user_errors():
        from ..engine.scan import printable

        with open_library(library, store, token=milvus_token) as lib:
            unknown = [p for p in paths if not lib.is_indexed(p)]
            n = lib.remove(paths)
            err.print(f"removed {plural(n, 'image')}; library has {plural(len(lib), 'image')}", highlight=False)
        for p in unknown:
            err.print(f"error: {printable(str(p))} is not in the library (nothing indexed at or under it)",
                      highlight=False, markup=False, soft_wrap=True)
        if unknown:
            raise typer.Exit(EXIT_USER_ERROR)
