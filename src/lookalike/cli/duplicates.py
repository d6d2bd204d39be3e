"""`lookalike duplicates`: find groups, name a keeper in each, and move or trash the rest
(a dry run unless --yes; undo with --undo LOG)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..engine.keep_policy import CRITERIA, DEFAULT_KEEP, KeepPolicy
from ..engine.params import TIERS, DuplicateThresholds, check_tiers, make_filter
from ..errors import NotFound
from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, WhereOpt, app, err, open_library, out, usage_errors, user_errors
from .progress import phase_tracker, progress_bar
from .render import path_text, plural, print_table

ACT_TIERS = ("exact", "near")  # what --move-to / --trash act on unless --tier says otherwise
CSV_COLUMNS = ["group", "tier", "keep", "match", "id", "path", "score", "width", "height", "size"]


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
    keep: str = typer.Option(",".join(DEFAULT_KEEP), "--keep",
                             help=f"Which image of a group to keep: criteria in order, from {', '.join(CRITERIA)}."),
    move_to: Optional[Path] = typer.Option(None, "--move-to", help="Move every image not kept into this folder "
                                           "(sub-folders mirror where they were). Exact and near duplicates only, "
                                           "unless --tier says otherwise. A dry run unless --yes."),
    trash: bool = typer.Option(False, "--trash", help="Send every image not kept to the system trash (exact and near "
                               "duplicates unless --tier says otherwise). A dry run unless --yes."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Really move or trash the files (otherwise: only show what would happen)."),
    log: Optional[Path] = typer.Option(None, "--log", help="Undo log to write [default: LIBRARY/undo/duplicates-TIME.jsonl]."),
    undo: Optional[Path] = typer.Option(None, "--undo", help="Put back every file an undo log names (in the library the log "
                                        "names, unless --library), and exit."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    milvus_token: Optional[str] = TokenOpt,
    as_csv: bool = typer.Option(False, "--csv", help=f"Print CSV: one row per image ({', '.join(CSV_COLUMNS)})."),
) -> None:
    """Find exact copies, near-duplicates (re-encoded, resized, lightly cropped) and similar
    shots; keep one image per group and move or trash the others."""
    if as_json and as_csv:
        ctx.fail("choose one of --json and --csv")
    if move_to is not None and trash:
        ctx.fail("choose one of --move-to and --trash")
    if undo is not None and (move_to is not None or trash):
        ctx.fail("--undo replays a log: it takes no --move-to or --trash")
    thresholds = DuplicateThresholds(near_cosine=near_cosine, similar_cosine=similar_cosine, neighbours=neighbours,
                                     near_min_coverage=near_coverage)
    acting = move_to is not None or trash
    with usage_errors():
        # Acting on similar shots (other pictures, not copies) is only done when asked for by name.
        tiers = check_tiers(tier or (list(ACT_TIERS) if acting else None), "--tier")
        where = make_filter(under, names=("--under", "", ""))
        policy = KeepPolicy.parse(keep)
        thresholds.validate()
    with user_errors():
        if undo is not None:
            _undo(undo, library, store, milvus_token, as_json)
            return
        with open_library(library, store, token=milvus_token) as lib:
            with progress_bar(err, label_width=9, transient=True, disable=as_json or as_csv) as bar:
                report = lib.duplicates(thresholds, tiers, where=lib.where(where_text, where), progress=phase_tracker(bar),
                                        keep=policy)
            action = None
            if acting:
                from ..engine.cleanup import choices_from_report

                action = lib.cleanup(choices_from_report(report), "move" if move_to is not None else "trash", move_to,
                                     dry_run=not yes, log=log)
        if as_json:
            data = report.to_dict()
            if action is not None:
                data["action"] = action.to_dict()
            print(json.dumps(data))
        elif as_csv:
            from ..engine.scan import printable

            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for g in report.groups:
                for m in g.members:
                    writer.writerow([g.group, g.tier, "true" if m.keep else "false", m.match or "", m.id,
                                     printable(m.path), m.score, m.width, m.height, m.size])
        else:
            _print_report(report, tiers)
        if action is not None and not as_json:
            _print_action(action)


def _undo(log: Path, library: Optional[Path], store: Optional[str], token: Optional[str], as_json: bool) -> None:
    from ..engine.cleanup import log_library
    from ..engine.scan import printable

    if not log.exists():
        raise NotFound(f"{printable(str(log))}: no such undo log")
    if library is None and store is None:  # the log names its library
        written_for = log_library(log)
        library = Path(written_for) if written_for else None
    with open_library(library, store, token=token) as lib:
        result = lib.undo_cleanup(log)
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        for path, reason in result.skipped:
            err.print(f"  not restored {printable(path)}: {reason}", highlight=False, markup=False, soft_wrap=True)
        err.print(f"restored {plural(len(result.restored), 'file')}, {len(result.skipped)} not restored", highlight=False)
    if result.skipped:
        raise typer.Exit(1)


def _print_report(report, tiers: list[str]) -> None:
    from ..engine.scan import printable

    table = Table("group", "tier", "keep", "match", "score", "pixels", "bytes", "path", title_justify="left",
                  title=f"{plural(len(report.groups), 'group')} among {plural(report.images, 'image')} ({report.seconds:.1f} s)")
    for g in report.groups:
        for n, m in enumerate(g.members):
            table.add_row(str(g.group) if n == 0 else "", g.tier if n == 0 else "", "keep" if m.keep else "",
                          m.match or "", f"{m.score:.4f}", f"{m.width}x{m.height}", f"{m.size:,}", path_text(m.path),
                          end_section=n == len(g.members) - 1)
    print_table(out, table)
    counts = report.counts()
    err.print(", ".join(f"{counts[t]} {t}" for t in TIERS if t in tiers) + f" groups; kept by {report.keep} "
              "(--keep); match = how each image matches the one kept; score = cosine similarity to it",
              highlight=False, soft_wrap=True)
    for path in report.unreadable:
        err.print(f"  could not re-read {printable(path)} to check for near-duplicates (run `lookalike index --prune`)",
                  highlight=False, markup=False, soft_wrap=True)


def _print_action(action) -> None:
    from ..engine.scan import printable

    verb = {"move": "moved", "trash": "trashed"}[action.mode]
    for a in action.actions:
        where = f" -> {printable(a.dest)}" if a.dest is not None else ""
        prefix = "would " + action.mode if action.dry_run else verb
        err.print(f"  {prefix} {printable(a.path)}{where}", highlight=False, markup=False, soft_wrap=True)
    for path, reason in action.skipped:
        err.print(f"  skipped {printable(path)}: {reason}", highlight=False, markup=False, soft_wrap=True)
    files = plural(len(action.actions), "file")
    if action.dry_run:
        err.print(f"dry run: {files} ({action.bytes / 1e6:.1f} MB) would be {verb}; nothing was changed. "
                  f"Add --yes to do it.", highlight=False, soft_wrap=True)
    elif action.log:
        err.print(f"{verb} {files} ({action.bytes / 1e6:.1f} MB); undo with: lookalike duplicates --undo {printable(action.log)}",
                  highlight=False, markup=False, soft_wrap=True)
    else:
        err.print(f"{verb} no files", highlight=False)
