"""`lookalike watch DIR...`: keep a library current as files come, change, move and go."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import NotFound
from .app import LibraryOpt, StoreOpt, TokenOpt, app, err, open_library, user_errors
from .render import plural

DEFAULT_DEBOUNCE = 2.0  # engine/watch.py's default, repeated here so `--help` does not load the engine


@app.command()
def watch(
    folders: List[Path] = typer.Argument(..., help="Folders to watch (recursively)."),
    library: Optional[Path] = LibraryOpt,
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Feature extractor, only when creating a library."),
    debounce: float = typer.Option(DEFAULT_DEBOUNCE, "--debounce", min=0.05,
                                   help="Seconds a file must stay unchanged before it is read (files being copied wait)."),
    store: Optional[str] = StoreOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per batch of changes."),
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Index FOLDERS, then keep the library current until Ctrl-C: new and changed images are
    indexed, moved ones followed, deleted ones forgotten."""
    with user_errors():
        from ..engine.scan import printable
        from ..engine.watch import WatchBatch, Watcher

        for f in folders:
            if not f.expanduser().is_dir():  # before a library is created
                raise NotFound(f"{printable(str(f))}: not a folder (watch takes folders)")

        def on_batch(batch: WatchBatch) -> None:
            if as_json:
                print(json.dumps(batch.to_dict()), flush=True)
                return
            r = batch.report
            parts = [f"{n} {word}" for n, word in ((r.added, "added"), (r.updated, "updated"), (r.moved, "moved"),
                                                    (batch.removed, "removed"), (len(r.failed), "failed")) if n]
            stamp = datetime.datetime.now().strftime("%H:%M:%S")
            err.print(f"{stamp} {', '.join(parts) or 'no change'} ({plural(len(batch.paths), 'path')})",
                      highlight=False, soft_wrap=True)
            for path, reason in r.failed:
                err.print(f"  skipped {printable(path)}: {reason}", highlight=False, markup=False, soft_wrap=True)

        def on_error(message: str) -> None:
            err.print(f"error: {message} (will retry)", highlight=False, markup=False, soft_wrap=True)

        with open_library(library, store, model, create=True, token=milvus_token) as lib:
            watcher = Watcher(lib, folders, debounce=debounce, on_batch=on_batch, on_error=on_error)
            report = watcher.start()
            assert report is not None
            if as_json:
                print(json.dumps({"catch_up": report.to_dict()}), flush=True)
            else:
                err.print(f"caught up: added {report.added}, updated {report.updated}, moved {report.moved}, "
                          f"removed {report.removed}, failed {len(report.failed)}; library has {plural(len(lib), 'image')}. "
                          f"Watching {', '.join(printable(str(f)) for f in folders)} (Ctrl-C to stop)",
                          highlight=False, markup=False, soft_wrap=True)
            try:
                watcher.wait()
            except KeyboardInterrupt:
                pass
            finally:
                watcher.stop()
            err.print("stopped watching; the library is up to date with every settled change", highlight=False)
