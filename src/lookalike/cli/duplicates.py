"""`lookalike duplicates`: exact copies, near-duplicates and similar shots."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table
from rich.text import Text

from ..engine.params import TIERS, DuplicateThresholds, check_tiers, make_filter
from ..engine.scan import printable
from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, WhereOpt, app, err, open_library, out, usage_errors, user_errors
from .progress import phase_tracker, progress_bar


@app.command()
def duplicates(
    ctx: typer.Context,
    library: Optional[Path] = LibraryOpt,
    tier: Optional[List[str]] = typer.Option(
        None, "--tier", help=f"Report only this tier (repeatable): {', '.join(TIERS)} [default: all]."),
    near_cosine: float = typer.Option(DuplicateThresholds.near_cosine, "--near-cosine", min=-1.0, max=1.0,
                                      help="Near-duplicates: least cosine similarity of the CNN features."),
    near_coverage: float = typer.Option(DuplicateThresholds.near_min_coverage, "--near-coverage", min=0.0, max=1.0,
                                        help="Near-duplicates: least share of each image the other must show (crops)."),
    similar_cosine: float = typer.Option(DuplicateThresholds.similar_cosine, "--similar-cosine", min=-1.0, max=1.0,
                                         help="Similar shots: least cosine similarity."),
    neighbours: int = typer.Option(DuplicateThresholds.neighbours, "--neighbours", min=1,
                                   help="Nearest images examined per image."),
    under: Optional[Path] = typer.Option(None, "--under", help="Only images under this folder."),
    where_text: Optional[str] = WhereOpt,
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV: one row per image (group, tier, id, path, score, width, height, size)."),
) -> None:
    """Find exact copies, near-duplicates (re-encoded, resized, lightly cropped) and similar shots."""
    if as_json and as_csv:
        ctx.fail("choose one of --json and --csv")
    thresholds = DuplicateThresholds(near_cosine=near_cosine, similar_cosine=similar_cosine, neighbours=neighbours,
                                     near_min_coverage=near_coverage)
    with usage_errors():
        tiers, where = check_tiers(tier, "--tier"), make_filter(under, names=("--under", "", ""))
        thresholds.validate()
    with user_errors():
        with open_library(library, store, token=milvus_token) as lib:
            with progress_bar(err, label_width=9, transient=True, disable=as_json or as_csv) as bar:
                report = lib.duplicates(thresholds, tiers, where=lib.where(where_text, where), progress=phase_tracker(bar))
            if as_json:
                print(json.dumps(report.to_dict()))
                return
            if as_csv:
                writer = csv.writer(sys.stdout, lineterminator="\n")
                writer.writerow(["group", "tier", "id", "path", "score", "width", "height", "size"])
                for g in report.groups:
                    for m in g.members:
                        writer.writerow([g.group, g.tier, m.id, m.path, m.score, m.width, m.height, m.size])
                return
            table = Table("group", "tier", "score", "pixels", "bytes", "path", title_justify="left",
                          title=f"{len(report.groups)} groups among {report.images} images ({report.seconds:.1f} s)")
            for g in report.groups:
                for n, m in enumerate(g.members):
                    table.add_row(str(g.group) if n == 0 else "", g.tier if n == 0 else "", f"{m.score:.4f}",
                                  f"{m.width}x{m.height}", f"{m.size:,}", Text(printable(m.path)), end_section=n == len(g.members) - 1)
            out.print(table)
            counts = report.counts()
            err.print(", ".join(f"{counts[t]} {t}" for t in TIERS if t in tiers) + " groups; the first image of each "
                      "group has the most pixels; score = cosine similarity to it", highlight=False)
            for path in report.unreadable:
                err.print(f"  could not re-read {printable(path)} to check for near-duplicates (run `lookalike index --prune`)",
                          highlight=False, markup=False)
