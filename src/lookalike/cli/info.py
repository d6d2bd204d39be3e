"""`lookalike info` and `lookalike models`: facts about a library and the extractors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ..store import ImageRecord

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, open_library, out, user_errors


@app.command()
def info(image: Optional[str] = typer.Argument(None, metavar="[id:N]", help="One image: its path, fields and top classes."),
         library: Optional[Path] = LibraryOpt, store: Optional[str] = StoreOpt, as_json: bool = JsonOpt,
         milvus_token: Optional[str] = TokenOpt) -> None:
    """Show a library's image count, model, fields and size on disk; or one image's fields and tags (id:N)."""
    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            if image is not None:
                _show_image(lib.record(image), as_json)
                return
            data = lib.info()
            data["fields"] = {name: kind for name, kind in sorted(lib.field_types().items())}
            if as_json:
                print(json.dumps(data))
                return
            for key, value in data.items():
                if key == "size_bytes":
                    key, value = "size on disk", f"{value / 1e6:.2f} MB"
                if key == "fields":
                    value = ", ".join(f"{name} ({kind})" for name, kind in value.items()) or "none"
                out.print(f"{key:>13}: {value}", highlight=False, markup=False)


def _show_image(rec: ImageRecord, as_json: bool) -> None:
    from ..engine.scan import printable

    if as_json:
        print(json.dumps({"id": rec.id, "path": printable(rec.path, controls=False), "sha256": rec.sha256,
                          "width": rec.width, "height": rec.height, "fields": rec.fields,
                          "tags": [{"label": label, "probability": p} for label, p in rec.tags[:10]]}))
        return
    out.print(Text(f"image {rec.id}: {printable(rec.path)}"))
    table = Table("field", "value", title="fields", title_justify="left")
    for name, value in sorted(rec.fields.items()):
        table.add_row(Text(name), Text(", ".join(value) if isinstance(value, list) else str(value)))
    out.print(table)
    tags = Table("probability", "class", title="top classes (lookalike tags --image ID for all)", title_justify="left")
    for label, p in rec.tags[:10]:
        tags.add_row(f"{p:.4f}", Text(label))
    out.print(tags)


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
