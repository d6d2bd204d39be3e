"""`lookalike migrate`: copy a library between stores without re-embedding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..config import default_library
from ..errors import InvalidQuery
from .app import JsonOpt, TokenOpt, app, err, open_library, user_errors
from .progress import progress_bar


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
    from ..engine.migrate import migrate as run_migrate

    def side(spec: str) -> tuple[Path, Optional[str]]:
        if spec.startswith("milvus:"):
            plain = next((s for s in (source, target) if not s.startswith("milvus:")), None)
            return (library or (Path(plain).expanduser() if plain else default_library())), spec
        return Path(spec).expanduser(), "embedded"  # a directory side is embedded, whatever $LOOKALIKE_STORE says

    with user_errors():
        (src_dir, src_store), (dst_dir, dst_store) = side(source), side(target)
        if (src_dir, src_store) == (dst_dir, dst_store):
            raise InvalidQuery("--from and --to are the same library")
        with open_library(src_dir, src_store, token=milvus_token) as src, \
                open_library(dst_dir, dst_store, src.model, create=True, token=milvus_token) as dst:
            with progress_bar(err, rate=True, disable=as_json) as bar:
                task = bar.add_task("copying", total=None)
                report = run_migrate(src, dst, lambda done, total: bar.update(task, completed=done, total=total))
            if as_json:
                print(json.dumps({"copied": report.copied, "model": report.model, "seconds": round(report.seconds, 3)}))
                return
            err.print(f"copied {report.copied} images ({report.model}) from {source} to {target} "
                      f"in {report.seconds:.1f} s; ids kept", highlight=False, markup=False)
