"""`lookalike search`: by image (one or several, with negatives), by word, or both, filtered by `--where`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, WhereOpt, app, err, open_library, out, usage_errors, user_errors


@app.command()
def search(
    ctx: typer.Context,
    queries: Optional[List[str]] = typer.Argument(
        None, metavar="QUERY", help="Image path, http(s) URL, '-' for image bytes on stdin, id:N, or an indexed image's path "
                                    "(more like this); several: images like all of them. Optional with --text."),
    library: Optional[Path] = LibraryOpt,
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of results."),
    min_score: Optional[float] = typer.Option(
        None, "--min-score", help="Drop results below this score (cosine similarity; classifier confidence for --text alone)."),
    text: Optional[str] = typer.Option(
        None, "--text", "-t", help="Images showing what this word names: an ImageNet class or a word above classes "
                                   "(e.g. 'dog', 'bird', 'vehicle', 'espresso'; commas = any of; see `lookalike tags`). "
                                   "Alone: ranked by the classifier's confidence; with QUERY: a filter on the image search."),
    where: Optional[str] = WhereOpt,
    under: Optional[Path] = typer.Option(None, "--under", help="Only images under this folder."),
    since: Optional[str] = typer.Option(
        None, "--since", help="Only images taken (else modified) on or after this date (YYYY-MM-DD[THH:MM], local time)."),
    until: Optional[str] = typer.Option(
        None, "--until", help="Only images taken (else modified) on or before this date (a date alone includes that whole day)."),
    ef: Optional[int] = typer.Option(
        None, "--ef", min=1, help="ANN candidates per query on large libraries: higher is more exact, slower [default: 96]."),
    negative: Optional[List[str]] = typer.Option(
        None, "--not", help="An image (path, URL, id:N) the results should NOT look like; repeatable."),
    weight: Optional[List[float]] = typer.Option(
        None, "--weight", help="How much each QUERY counts, in order (one per QUERY; default 1 each)."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Find the indexed images that look most like QUERY, or that show --text, or both; --where filters on fields."""
    if not queries and text is None:
        ctx.fail("Missing argument 'QUERY' (give an image query, --text, or both).")
    if (negative or weight) and not queries:
        ctx.fail("--not and --weight need at least one QUERY image.")
    from ..engine.params import check_k, check_label_text, check_score, make_filter

    with usage_errors():  # checked before the library or the model is opened: a bad option costs nothing
        base = make_filter(under, since, until, names=("--under", "--since", "--until"))
        check_k(k, "-k"), check_score(min_score, "--min-score")
    with user_errors():
        check_label_text(text)
        from ..engine.scan import printable

        with open_library(library, store, token=milvus_token) as lib:
            flt = lib.where(where, base)  # an unknown field or a syntax error: one line pointing at the token
            t0 = time.perf_counter()
            if not queries:
                hits = lib.search_text(text or "", k=k, min_score=min_score, where=flt)
                label = text or ""
            else:
                sources: list = [sys.stdin.buffer.read() if q == "-" else q for q in queries]
                hits = lib.search(sources if len(sources) > 1 else sources[0], k=k, min_score=min_score, where=flt,
                                  text=text, ef=ef, negative=list(negative or []), weights=weight or None)
                label = " + ".join("-" if q == "-" else printable(q, controls=False) for q in queries)
                if negative:
                    label += "".join(f" - {printable(n, controls=False)}" for n in negative)
            took_ms = (time.perf_counter() - t0) * 1000
            if text is not None and 0 < lib.stored_classes() <= 5 and len(lib.expand(text).labels) > 5:
                err.print(f"note: this library keeps only 5 classes per image, so {text!r} ({len(lib.expand(text).labels)} "
                          "classes) finds fewer images than it could: re-index into a new library to enable broader words",
                          highlight=False, markup=False, soft_wrap=True)
            if as_json:
                print(json.dumps({"query": label, "model": lib.model, "took_ms": round(took_ms, 3),
                                  "results": [h.to_dict() for h in hits]}))
                return
            if not hits and text is not None:  # say so, rather than an empty table
                err.print(f"no images tagged {text!r}" + (f" among the images like {label}" if queries else "")
                          + (f" with confidence >= {min_score}" if min_score is not None else ""),
                          highlight=False, markup=False, soft_wrap=True)
                return
            title = f"{len(hits)} result{'' if len(hits) == 1 else 's'} for {label}" + (f" tagged {text!r}" if queries and text else "")
            # Text, not markup: a file named "m[/bold]x.jpg" is shown as it is.
            table = Table(title=Text(f"{title} ({took_ms:.1f} ms, {lib.model})"), title_justify="left")
            score_name = "confidence" if not queries else "score"
            columns: list[tuple[str, JustifyMethod]] = [("rank", "right"), (score_name, "right"), ("id", "right"), ("path", "left")]
            for col, just in columns:
                table.add_column(col, justify=just)
            for h in hits:
                table.add_row(str(h.rank), f"{h.score:.4f}", str(h.id), Text(printable(h.path)))
            out.print(table)
