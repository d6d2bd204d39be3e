"""`lookalike info` and `lookalike models`: facts about a library and the extractors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from rich.table import Table

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, open_library, out, user_errors


@app.command()
def info(library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt, as_json: bool = JsonOpt,
         milvus_token: Optional[str] = TokenOpt) -> None:
    """Show a library's image count, model, dimension and size on disk."""
    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            data = lib.info()
            if as_json:
                print(json.dumps(data))
                return
            for key, value in data.items():
                if key == "size_bytes":
                    key, value = "size on disk", f"{value / 1e6:.2f} MB"
                out.print(f"{key:>13}: {value}", highlight=False, markup=False)



@app.command()
def models(as_json: bool = JsonOpt) -> None:
    """List the available feature extractors."""
    from ..models import list_models

    infos = list_models()
    if as_json:
        print(json.dumps([{"name": m.name, "dim": m.dim, "kind": m.kind, "description": m.description} for m in infos]))
        return
    table = Table("name", "dim", "kind", "description")
    for m in infos:
        table.add_row(m.name, str(m.dim), m.kind, m.description)
    out.print(table)
