"""`lookalike scans ...`: medical scans (DICOM, NIfTI) with a window, series grouping and
series queries. Plain `lookalike index` indexes scans too, with the library's settings."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, WhereOpt, app, err, open_library, out, usage_errors, user_errors

WindowOpt = typer.Option(None, "--window", help="brain, lung, bone, soft (CT presets), auto (the file's window, "
                                                "else a modality default) or CENTRE,WIDTH, e.g. 40,400.")

scans = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                    help="Medical scans: DICOM and NIfTI, searched by structure, image by image or by series.")
app.add_typer(scans, name="scans")


@scans.command("index")
def index_scans(
    paths: List[str] = typer.Argument(..., help="DICOM files (with or without .dcm), NIfTI volumes, folders, or a DICOMweb "
                                                "server: dicomweb+http://HOST:PORT/dicom-web (credentials in $LOOKALIKE_DICOMWEB_AUTH)."),
    library: Optional[Path] = LibraryOpt,
    window: Optional[str] = WindowOpt,
    keep_phi: bool = typer.Option(False, "--keep-phi", help="Store patient identifiers (name, id, birth date, ...): "
                                  "only when creating a library, for data you may hold identified."),
    prune: bool = typer.Option(False, "--prune", help="Also forget entries whose files (or PACS instances) are gone."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Index scans with this library's window (set once, on the first run) and PHI policy."""
    from ..engine.scan import printable
    from ..engine.series import configure_scans
    from ..medical.dicomweb import is_dicomweb
    from ..medical.window import parse_window

    with usage_errors():
        parse_window(window)
    with user_errors():
        with open_library(library, store, create=True, token=milvus_token) as lib:
            configure_scans(lib, window, keep_phi)
            reports = []
            files = [p for p in paths if not is_dicomweb(p)]
            if files:
                reports.append(("files", lib.add([Path(p) for p in files], prune=prune)))
            for source in (p for p in paths if is_dicomweb(p)):
                from ..engine.dicomweb_index import index_dicomweb

                reports.append((source, index_dicomweb(lib, source, prune=prune)))
            if as_json:
                data = [{"source": src, **r.to_dict()} for src, r in reports]
                out.print_json(data=data[0] if len(data) == 1 else data)
                return
            for src, report in reports:
                err.print(f"{'' if src == 'files' else src + ': '}added {report.added}, updated {report.updated}, "
                          f"unchanged {report.unchanged}, removed {report.removed}, failed {len(report.failed)} — "
                          f"{report.embedded} frames/slices embedded in {report.seconds:.1f} s", highlight=False, markup=False)
                for path, reason in report.failed:
                    err.print(f"  skipped {printable(path)}: {reason}", highlight=False, markup=False, soft_wrap=True)
            err.print(f"library has {len(lib)} entries", highlight=False)


@scans.command("search")
def search_scans(
    query: str = typer.Argument(..., help="A DICOM file or frame (FILE#frame=N), a NIfTI slice (FILE#slice=N), an image, id:N; "
                                          "with --series: a folder, a multi-frame file, a volume or a series UID."),
    library: Optional[Path] = LibraryOpt,
    k: int = typer.Option(10, "-k", "--top", min=1, help="Number of results."),
    group: str = typer.Option("image", "--group", help="image: one row per frame/slice; series: the best slice per series."),
    series: bool = typer.Option(False, "--series", help="QUERY is a whole series: match it slice by slice, rank series."),
    window: Optional[str] = WindowOpt,
    where: Optional[str] = WhereOpt,
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Find scans whose structure looks like QUERY; --where filters on their fields (modality, body_part, ...)."""
    from ..engine.scan import printable
    from ..engine.series import search_by_series
    from ..errors import InvalidQuery
    from ..medical.window import parse_window

    with usage_errors():
        if group not in ("image", "series"):
            raise InvalidQuery(f"--group {group!r}: use image or series")
        if window is not None:
            parse_window(window)
    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            flt = lib.where(where)
            t0 = time.perf_counter()
            if series:
                n_slices, hits = search_by_series(lib, query, k, window=window, where=flt)
                title = f"{len(hits)} series like the {n_slices} slices of {printable(query)}"
            elif group == "series":
                series_search(lib, query, k, flt, as_json, window)
                return
            else:
                vec, exclude = lib.query_vector(query, window)
                image_hits = lib.search_vector(vec, k, where=flt, exclude=exclude)
                records = lib.records_by_id([h.id for h in image_hits])
                took = (time.perf_counter() - t0) * 1000
                rows = [{**h.to_dict(), "fields": _shown(records[h.id].fields)} for h in image_hits if h.id in records]
                _print(as_json, query, took, rows, f"{len(rows)} results for {printable(query)}")
                return
            took = (time.perf_counter() - t0) * 1000
            rows = [h.to_dict() for h in hits]
            _print(as_json, query, took, rows, title)


def series_search(lib, query: str, k: int, flt, as_json: bool, window: Optional[str] = None) -> None:
    """`--group series`: the best slice of each series, as a table or JSON."""
    from ..engine.scan import printable
    from ..engine.series import search_grouped

    t0 = time.perf_counter()
    hits = search_grouped(lib, query, k, window=window, where=flt)
    _print(as_json, query, (time.perf_counter() - t0) * 1000, [h.to_dict() for h in hits],
           f"{len(hits)} series for {printable(query)}")


def _shown(fields: dict) -> dict:
    from ..engine.series import SHOWN_FIELDS

    return {f: fields[f] for f in SHOWN_FIELDS if f in fields}


def _print(as_json: bool, query: str, took_ms: float, rows: list[dict], title: str) -> None:
    from ..engine.scan import printable

    if as_json:
        print(json.dumps({"query": printable(query, controls=False), "took_ms": round(took_ms, 3), "results": rows}))
        return
    table = Table(title=f"{title} ({took_ms:.0f} ms)", title_justify="left")
    for col, just in (("rank", "right"), ("score", "right"), ("modality", "left"), ("description", "left"),
                      ("position", "right"), ("path", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        f = r.get("fields", {})
        path = r["best"]["path"] if "best" in r else r["path"]
        position = f.get("slice_position")
        table.add_row(str(r["rank"]), f"{r['score']:.4f}", str(f.get("modality", "")),
                      printable(str(f.get("series_description", ""))),
                      "" if position is None else f"{position:g} mm", printable(path))
    out.print(table)


def eval_brain_slices(methods: str, out_dir: Path) -> None:
    """`lookalike eval brain-slices`: the table of eval/brain_slices.py, written to OUT too."""
    from ..eval.brain_slices import brain_table, run_brain_slices, write_brain_report

    with user_errors():
        with err.status("embedding brain slices with each method"):
            result = run_brain_slices([m.strip() for m in methods.split(",") if m.strip()])
        files = write_brain_report(result, out_dir)
        out.print(brain_table(result), highlight=False, markup=False)
        err.print(f"wrote {', '.join(str(f) for f in files)}", highlight=False, soft_wrap=True)
