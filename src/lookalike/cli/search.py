"""`lookalike search`: by image, by tag, or both."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table
from rich.text import Text

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, open_library, out, usage_errors, user_errors


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
    from ..engine.params import check_k, check_label_text, check_score, make_filter

    with usage_errors():  # checked before the library or the model is opened: a bad option costs nothing
        where = make_filter(under, since, until, names=("--under", "--since", "--until"))
        check_k(k, "-k"), check_score(min_score, "--min-score")
    with user_errors():
        check_label_text(text)
        from ..engine.scan import printable

        with open_library(library, store, token=milvus_token) as lib:
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
            # Text, not markup: a file named "m[/bold]x.jpg" is shown as it is.
            table = Table(title=Text(f"{title} ({took_ms:.1f} ms, {lib.model})"), title_justify="left")
            score_name = "confidence" if query is None else "score"
            for col, just in (("rank", "right"), (score_name, "right"), ("id", "right"), ("path", "left")):
                table.add_column(col, justify=just)  # type: ignore[arg-type]
            for h in hits:
                table.add_row(str(h.rank), f"{h.score:.4f}", str(h.id), Text(printable(h.path)))
            out.print(table)
