"""`make demo`: build a gallery from bundled real photos and their edited copies, index it,
and run searches whose right answers you can check at a glance."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..engine import Library
from .samples import build_gallery, save_jpeg, unseen_edits


def make_queries(root: Path) -> dict[str, Path]:
    """Edits that are *not* in the gallery: greyscale, a grey occluding box, a tight crop."""
    return {name: save_jpeg(q, root / "queries" / f"{name}-{how}.jpg", 80) for name, (how, q) in unseen_edits().items()}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m lookalike.demo", description=__doc__)
    ap.add_argument("--gallery", type=Path, default=Path("demo-gallery"), help="where to write the sample photos")
    ap.add_argument("--library", type=Path, default=Path("demo-library"), help="library directory")
    args = ap.parse_args()
    con = Console()

    con.rule("1. build a gallery from photos that scikit-image and scikit-learn ship")
    groups = build_gallery(args.gallery)
    queries = make_queries(args.gallery)
    con.print(f"{sum(len(v) for v in groups.values())} gallery images of {len(groups)} photos "
              f"(originals + crop/flip/brightness/rotation/resize) in {args.gallery}/")

    con.rule("2. index it (same as: lookalike index demo-gallery/photos demo-gallery/variants --library demo-library)")
    with Library.open(args.library) as lib:
        report = lib.add([args.gallery / "photos", args.gallery / "variants"])
        con.print(f"added {report.added}, unchanged {report.unchanged}, {report.embedded} embedded "
                  f"in {report.seconds:.1f} s; library: {len(lib)} images, model {lib.model}")

        con.rule("3. search with edits the gallery has never seen (same as: lookalike search QUERY --library demo-library)")
        table = Table("query", "top-5 results (✔ = same photo)", "correct", "ms")
        right = total = 0
        for name, qpath in queries.items():
            t0 = time.perf_counter()
            hits = lib.search(qpath, k=5)
            ms = (time.perf_counter() - t0) * 1000
            family = {str(p.resolve()) for p in groups[name]}
            marks = [("✔ " if str(Path(h.path).resolve()) in family else "✘ ") + Path(h.path).name for h in hits]
            ok = sum(m.startswith("✔") for m in marks)
            right += ok
            total += min(5, len(family))
            table.add_row(qpath.name, ", ".join(marks), f"{ok}/5", f"{ms:.0f}")
        con.print(table)
        con.print(f"{right}/{total} of the top-5 slots hold an edit of the query's photo.")

        con.rule("4. what the model sees (ImageNet labels stored per image)")
        for rec in lib.records(limit=len(groups)):
            if "/photos/" in rec.path:
                con.print(f"{Path(rec.path).name:>28}: " + ", ".join(f"{t.split(',')[0]} {p:.2f}" for t, p in rec.tags[:3]))
    con.print(f"\nTry it: .venv/bin/lookalike search {next(iter(queries.values()))} --library {args.library}")
    con.print("Web page and REST API on this library: make serve-demo, then open http://127.0.0.1:8000/")


if __name__ == "__main__":
    main()
