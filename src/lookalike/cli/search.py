"""`lookalike search`: by image (one or several, with negatives), by word, or both, filtered by `--where`."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text

from .app import JsonOpt, LibraryOpt, StoreOpt, TokenOpt, WhereOpt, app, err, open_library, out, usage_errors, user_errors
from .render import path_text, plural, print_table


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
    min_confidence: Optional[float] = typer.Option(
        None, "--min-confidence", help="Drop results below this confidence (0..1: the calibrated probability that the result "
                                       "shows the same thing as the query; see docs/evaluation.md)."),
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
        None, "--ef", min=1, help="ANN candidates per query on large libraries: higher is more exact, slower [default: 160]."),
    rerank: Optional[str] = typer.Option(
        None, "--rerank", metavar="[qe|none]", help="qe: re-order by query expansion (the top results are mixed into the "
                                                    "query and the library is searched again; scores stay the cosine to the "
                                                    "query; docs/search.md); none: plain order [default: qe]."),
    negative: Optional[List[str]] = typer.Option(
        None, "--not", help="An image (path, URL, id:N) the results should NOT look like; repeatable."),
    weight: Optional[List[float]] = typer.Option(
        None, "--weight", help="How much each QUERY counts, in order (one per QUERY; default 1 each)."),
    group: Optional[str] = typer.Option(
        None, "--group", help="'series': scans (DICOM, NIfTI) grouped by series, the best slice of each (one QUERY; docs/medical.md)."),
    colour: Optional[str] = typer.Option(
        None, "--colour", "--color", help="any (style only), same (style and colour) or a colour weight 0..1 (docs/catalogue.md)."),
    collapse: Optional[str] = typer.Option(None, "--collapse", help="At most one result per value of this field (e.g. group_id)."),
    distinct: bool = typer.Option(False, "--distinct", help="Drop results that are near-duplicates of a higher result."),
    verify: bool = typer.Option(
        False, "--verify", help="Find this photo: check the top candidates with keypoints (ORB + RANSAC) and move those showing "
                                "the same picture (a crop, rotated, half covered, re-lit) to the top, with their inlier count. "
                                "One QUERY image; needs the duplicates extra (docs/search.md)."),
    verify_depth: Optional[int] = typer.Option(
        None, "--verify-depth", help="Candidates checked by --verify (1..200) [default: 20]: more finds more, each costs a "
                                     "file read and a keypoint match."),
    crop: Optional[str] = typer.Option(
        None, "--crop", help="Search only this region of the QUERY image: x0,y0,x1,y1 as fractions (0..1) of its width and "
                             "height, as in the REST API (e.g. 0.5,0,1,0.5 = the top-right quarter)."),
    store: Optional[str] = StoreOpt,
    as_json: bool = JsonOpt,
    paths: bool = typer.Option(False, "--paths", help="Print only the results' paths, one per line (for piping to a viewer)."),
    milvus_token: Optional[str] = TokenOpt,
) -> None:
    """Find the indexed images that look most like QUERY, or that show --text, or both; --where filters on fields."""
    if not queries and text is None:
        ctx.fail("Missing argument 'QUERY' (give an image query, --text, or both).")
    if (negative or weight) and not queries:
        ctx.fail("--not and --weight need at least one QUERY image.")
    rules = colour is not None or collapse is not None or distinct
    if rules and (len(queries or []) != 1 or text is not None or negative or weight):
        ctx.fail("--colour, --collapse and --distinct take one QUERY image (or item:ID), without --text, --not or --weight.")
    if crop is not None and (len(queries or []) != 1 or negative or weight or rules or group):
        ctx.fail("--crop takes one QUERY image, without --not, --weight, --group, --colour, --collapse or --distinct.")
    if (verify or verify_depth is not None) and (len(queries or []) != 1 or negative or weight or rules or group or crop):
        ctx.fail("--verify takes one QUERY image, without --not, --weight, --group, --crop, --colour, --collapse or --distinct.")
    if paths and (as_json or rules or group):
        ctx.fail("--paths prints paths alone: not with --json, --group, --colour, --collapse or --distinct.")
    from ..engine.params import check_k, check_label_text, check_score, make_filter, parse_crop
    from ..engine.rerank import check_rerank

    if group is not None and (group not in ("image", "series") or (group == "series" and (len(queries or []) != 1 or negative or text))):
        ctx.fail("--group takes 'image' or 'series'; 'series' takes one QUERY image and no --not or --text.")
    with usage_errors():  # checked before the library or the model is opened: a bad option costs nothing
        base = make_filter(under, since, until, names=("--under", "--since", "--until"))
        check_k(k, "-k"), check_score(min_score, "--min-score"), check_score(min_confidence, "--min-confidence", 0.0, 1.0)
        parse_crop(crop, "--crop")
        if verify_depth is not None:
            from ..engine.verify import check_depth

            check_depth(verify_depth, "--verify-depth")
        check_rerank(rerank, "--rerank")
    with user_errors():
        check_label_text(text)
        from ..engine.scan import printable

        with open_library(library, store, token=milvus_token) as lib:
            flt = lib.where(where, base)  # an unknown field or a syntax error: one line pointing at the token
            if group == "series":  # scans: one row per series (cli/scans.py)
                from .scans import series_search

                series_search(lib, (queries or [""])[0], k, flt, as_json)
                return
            t0 = time.perf_counter()
            if rules and queries:
                from ..engine.catalogue.similar import similar
                from .catalogue import print_item_hits

                query = queries[0]
                source = sys.stdin.buffer.read() if query == "-" else query
                item_hits = similar(lib, source, k, where=flt, colour=colour or "any", collapse=collapse, distinct=distinct,
                                    min_score=min_score, ef=ef, items_only=query.startswith("item:"))
                print_item_hits(printable(query, controls=False), item_hits, as_json)
                return
            if not queries:
                hits = lib.search_text(text or "", k=k, min_score=min_score, where=flt, min_confidence=min_confidence)
                label = text or ""
            elif crop is not None:  # a region of one image (engine/region.py)
                from ..engine.region import region_query

                region, exclude = region_query(lib, sys.stdin.buffer.read() if queries[0] == "-" else queries[0], crop)
                hits = lib.search_vector(lib.embed([region])[0], k, min_score=min_score, where=flt, exclude=exclude, ef=ef, text=text,
                                         rerank=rerank)
                label = f"{printable(queries[0], controls=False)} [crop {crop}]"
            else:
                sources: list = [sys.stdin.buffer.read() if q == "-" else q for q in queries]
                hits = lib.search(sources if len(sources) > 1 else sources[0], k=k, min_score=min_score, where=flt,
                                  text=text, ef=ef, negative=list(negative or []), weights=weight or None,
                                  min_confidence=min_confidence, verify=verify or verify_depth is not None,
                                  verify_depth=verify_depth, rerank=rerank)
                label = " + ".join("-" if q == "-" else printable(q, controls=False) for q in queries)
                if negative:
                    label += "".join(f" - {printable(n, controls=False)}" for n in negative)
            took_ms = (time.perf_counter() - t0) * 1000
            verdict = lib.verdict(hits) if queries else None  # word search: scores are already probabilities
            good = lib.calibration.good_match if queries and lib.calibration is not None else None
            named = len(lib.expand(text).labels) if text is not None else 0
            if named > 5 and 0 < lib.stored_classes() <= 5:
                err.print(f"note: this library keeps only 5 classes per image, so {text!r} ({named} "
                          "classes) finds fewer images than it could: re-index into a new library to enable broader words",
                          highlight=False, markup=False, soft_wrap=True)
            if paths:  # raw, for other programs: one path per line, nothing else on stdout
                sys.stdout.flush()
                sys.stdout.buffer.write(b"".join(os.fsencode(h.path) + b"\n" for h in hits))
                sys.stdout.buffer.flush()
                return
            if as_json:
                print(json.dumps({"query": label, "model": lib.model, "took_ms": round(took_ms, 3), "verdict": verdict,
                                  "good_match": good, "results": [h.to_dict() for h in hits]}))
                return
            if not hits and text is not None:  # say so, rather than an empty table
                err.print(f"no images tagged {text!r}" + (f" among the images like {label}" if queries else "")
                          + (f" with confidence >= {min_score}" if min_score is not None else ""),
                          highlight=False, markup=False, soft_wrap=True)
                return
            if queries and len(queries) == 1 and re.fullmatch(r"id:\d+", queries[0].strip()):  # name the image, not just its number
                label = f"{label} ({printable(lib.get(int(queries[0].strip()[3:])).path)})"
            title = f"{plural(len(hits), 'result')} for {label}" + (f" tagged {text!r}" if queries and text else "")
            # Text, not markup: a file named "m[/bold]x.jpg" is shown as it is.
            table = Table(title=Text(f"{title} ({took_ms:.1f} ms, {lib.model})"), title_justify="left")
            score_name = "confidence" if not queries else "score"
            columns: list[tuple[str, JustifyMethod]] = [("rank", "right"), (score_name, "right")]
            columns += [("confidence", "right")] if queries else []
            columns += [("inliers", "right")] if hits and hits[0].inliers is not None else []
            for col, just in columns + [("id", "right"), ("path", "left")]:
                table.add_column(col, justify=just)
            for i, h in enumerate(hits):
                conf = [] if not queries else ["–" if h.confidence is None else f"{h.confidence:.2f}"]
                # A line under the last good match: what is above it is what the query most likely shows.
                last_good = (good is not None and h.confidence is not None and h.confidence >= good and i + 1 < len(hits)
                             and (hits[i + 1].confidence or 0.0) < good)
                inliers = [] if h.inliers is None else [str(h.inliers)]
                table.add_row(str(h.rank), f"{h.score:.4f}", *conf, *inliers, str(h.id), path_text(h.path), end_section=last_good)
            if verdict == "no good match" and good is not None:
                best = max((h.confidence or 0.0 for h in hits), default=0.0)
                table.caption = Text(f"no good match: the best confidence is {best:.2f} (a good match needs {good:.2f})")
                table.caption_justify = "left"
            print_table(out, table)
