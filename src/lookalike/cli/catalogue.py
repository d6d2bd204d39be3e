"""`lookalike catalogue ...`: a shop's products by id (import/sync, export, similar items, bulk neighbours)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, app, err, open_library, out, usage_errors, user_errors
from .progress import progress_bar

catalogue_app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                            context_settings={"help_option_names": ["-h", "--help"]},
                            help="A shop's products by id: import/sync a product file, export, similar items, neighbours.")
app.add_typer(catalogue_app, name="catalogue")

WhereOpt = typer.Option(None, "--where", "-w", help="Filter over the items' fields, e.g. 'price <= 60' (docs/filters.md).")


@catalogue_app.command("import")
def import_(
    source: Path = typer.Argument(..., help="Product file: .csv, .tsv, .jsonl or .parquet."),
    id_column: str = typer.Option(..., "--id", help="Column holding each item's id (e.g. sku)."),
    image: List[str] = typer.Option(..., "--image", help="Image column (path or http(s) URL); repeat for extra views (first: primary)."),
    fields: Optional[str] = typer.Option(None, "--fields", help="Comma-separated columns to keep as fields [default: all]."),
    all_fields: bool = typer.Option(False, "--all-fields", help="Keep every column as a field (the default without --fields)."),
    type_: Optional[List[str]] = typer.Option(None, "--type", help="Declare a column's type: COLUMN=str|int|float|bool|date|list."),
    prune: bool = typer.Option(False, "--prune", help="Remove items whose id is not in the file."),
    fmt: Optional[str] = typer.Option(None, "--format", help="csv, tsv, jsonl or parquet [default: from the extension]."),
    deadline: float = typer.Option(600.0, "--deadline", min=1, help="Seconds all downloads of this import may take together."),
    max_mb: float = typer.Option(50.0, "--max-mb", min=0.01, help="Largest image download, in MB."),
    retries: int = typer.Option(3, "--retries", min=0, help="Retries of a download after a timeout, connection error or 5xx."),
    revalidate: bool = typer.Option(False, "--revalidate",
                                    help="Ask the server whether cached URLs changed (conditional GET) instead of trusting the cache."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per model batch."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Fetch/decode threads [default: 8 with URLs, else CPU count]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Feature extractor, only when creating a library."),
    library: Optional[Path] = LibraryOpt,
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Import or sync products: new items embedded, changed images re-embedded, changed fields updated."""
    if fields is not None and all_fields:
        raise typer.BadParameter("give --fields or --all-fields, not both", param_hint="--fields")
    from ..engine.catalogue import FetchPolicy, import_items
    from ..engine.catalogue.columns import parse_type_specs

    with usage_errors():
        types = parse_type_specs(type_)
    with user_errors():
        chosen = [c.strip() for c in fields.split(",") if c.strip()] if fields is not None else None
        policy = FetchPolicy(max_bytes=int(max_mb * 1024 * 1024), deadline_s=deadline, retries=retries, revalidate=revalidate)
        with open_library(library, store, model, create=True, token=milvus_token) as lib:
            with progress_bar(err, disable=as_json, rate=True) as bar:
                task = bar.add_task("importing", total=None)
                report = import_items(lib, source, id_column, image, fields=chosen, types=types, prune=prune, fmt=fmt,
                                      policy=policy, batch_size=batch_size, workers=workers, sync_index=True,
                                      progress=lambda done, total: bar.update(task, completed=done, total=total))
            if as_json:
                out.print_json(data=report.to_dict())
                return
            err.print(f"added {report.added}, updated {report.updated}, fields changed {report.metadata}, "
                      f"unchanged {report.unchanged}, removed {report.removed}, problems {len(report.problems)} "
                      f"— {report.embedded} embedded, {report.downloaded} downloaded ({report.from_cache} from cache) "
                      f"in {report.seconds:.1f} s; library has {len(lib)} records", highlight=False, markup=False)
            for note in report.notes:
                err.print(f"  note: {note}", highlight=False, markup=False, soft_wrap=True)
            for problem in report.problems:
                err.print(f"  {problem}", highlight=False, markup=False, soft_wrap=True)


@catalogue_app.command("export")
def export(
    out_path: Path = typer.Argument(..., help="Output file: .csv or .jsonl ('-' for JSON Lines on stdout)."),
    library: Optional[Path] = LibraryOpt,
    store: Optional[str] = StoreOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Write every item and its fields back out (the columns `catalogue import` reads)."""
    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            count = lib.export_items(None if str(out_path) == "-" else out_path)
        if str(out_path) != "-":
            err.print(f"exported {count} items to {out_path}", highlight=False, markup=False)


@catalogue_app.command("neighbours")
def neighbours(
    out_path: Path = typer.Option(..., "--out", "-o", help="Output file: .csv, .tsv or .parquet (item, rank, neighbour, score)."),
    k: int = typer.Option(20, "-k", "--top", min=1, max=1000, help="Neighbours per item."),
    where: Optional[str] = WhereOpt,
    same: Optional[str] = typer.Option(None, "--same", help="Only neighbours with the same value of this field (e.g. category)."),
    batch: int = typer.Option(256, "--batch", min=1, help="Items per batched search."),
    library: Optional[Path] = LibraryOpt,
    store: Optional[str] = StoreOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Every item's k most similar items, for recommendation pipelines."""
    from ..engine.catalogue.neighbours import neighbour_rows, write_neighbours

    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            lib.sync_index()
            with progress_bar(err) as bar:
                task = bar.add_task("neighbours", total=None)
                rows = write_neighbours(neighbour_rows(lib, k, where=where, same=same, batch=batch,
                                                       progress=lambda done, total: bar.update(task, completed=done, total=total)),
                                        out_path)
        err.print(f"wrote {rows} rows to {out_path}", highlight=False, markup=False)


@catalogue_app.command("similar")
def similar_cmd(
    query: str = typer.Argument(..., help="item:SKU (more like this item, never itself), an image path or an http(s) URL."),
    k: int = typer.Option(10, "-k", "--top", min=1, max=1000, help="Number of results."),
    where: Optional[str] = WhereOpt,
    colour: str = typer.Option("any", "--colour", "--color", help="any (style only), same (style and colour), or a colour weight 0..1."),
    collapse: Optional[str] = typer.Option(None, "--collapse", help="At most one result per value of this field (e.g. group_id)."),
    distinct: bool = typer.Option(False, "--distinct", help="Drop results that are near-duplicates of a higher result."),
    library: Optional[Path] = LibraryOpt,
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Items that look like QUERY, with the shop's rules (filter, colour, one per group, no near-copies)."""
    from ..engine.catalogue.similar import similar

    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            hits = similar(lib, query, k, where=where, colour=colour, collapse=collapse, distinct=distinct)
            print_item_hits(query, hits, as_json)


def print_item_hits(query: str, hits, as_json: bool) -> None:
    """Item results as JSON or a table with the item id and its fields."""
    if as_json:
        print(json.dumps({"query": query, "results": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return
    table = Table(title=Text(f"{len(hits)} items like {query}"), title_justify="left")
    for col, just in (("rank", "right"), ("score", "right"), ("item", "left"), ("fields", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for h in hits:
        shown = ", ".join(f"{key}={value}" for key, value in h.fields.items() if key not in ("item", "image", "images"))
        table.add_row(str(h.rank), f"{h.score:.4f}", Text(h.item or h.path), Text(shown[:120]))
    out.print(table)
