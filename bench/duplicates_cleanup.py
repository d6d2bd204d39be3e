"""Duplicates end to end on the sample gallery (bundled photos, each with six edits:
brighter, darker, smaller, mirrored, rotated, cropped): find the groups, set aside every exact and near
duplicate not kept (what `--move-to DIR --yes` does), undo; prints counts and times.

    python bench/duplicates_cleanup.py"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path

from lookalike import Library
from lookalike.demo.samples import build_gallery
from lookalike.engine.cleanup import choices_from_report


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_gallery(root / "gallery")
        with Library.open(root / "lib") as lib:
            lib.add([root / "gallery"])
            t0 = time.perf_counter()
            report = lib.duplicates()
            t_find = time.perf_counter() - t0
            matches = Counter(m.match for g in report.groups for m in g.members if m.match)
            act = lib.duplicates(tiers=["exact", "near"])  # what `--move-to` acts on by default
            choices = choices_from_report(act)
            t0 = time.perf_counter()
            done = lib.cleanup(choices, "move", root / "aside", dry_run=False)
            t_move = time.perf_counter() - t0
            t0 = time.perf_counter()
            undone = lib.undo_cleanup(done.log)  # type: ignore[arg-type]
            t_undo = time.perf_counter() - t0
            counts = report.counts()
            print(f"{report.images} images: {len(report.groups)} groups ({counts['exact']} exact, {counts['near']} near, "
                  f"{counts['similar']} similar); members not kept: {dict(matches)}")
            print("| step | images | seconds |\n|---|---|---|")
            print(f"| find duplicates | {report.images} | {t_find:.2f} |")
            print(f"| move the non-keepers aside (--yes) | {len(done.actions)} | {t_move:.2f} |")
            print(f"| undo (files back, re-indexed) | {len(undone.restored)} | {t_undo:.2f} |")
            assert len(undone.restored) == len(done.actions) and not undone.skipped


if __name__ == "__main__":
    main()
