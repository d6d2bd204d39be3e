"""What geometric verification (`search --verify`) costs per query on a real library of
photo files at their shipped resolution, against plain search measured in the same run.

    python bench/verify_latency.py [--queries 20] [--depth 20]

Indexes the photos-hard originals as files (the wallpapers and puzzle photos as the packages
ship them, 1280-2560 px JPEGs; the bundled photos as JPEG) and its distractors (JPEGs of at
most 640 px: candidates among them are cheaper to read than full-size photos), then searches with photos-hard's
harsh-edit queries (JPEG files): plain, then --verify at each depth. Verification reads each
candidate file from disk (JPEG draft decoding), finds ORB keypoints and matches them. Prints
median wall and CPU ms per query and the ratio to plain search, and writes
bench/results/verify_latency.json."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from common import median_ms
from lookalike import Library
from lookalike.demo.samples import sample_photos, save_jpeg
from lookalike.eval.domains import MATE_BACKGROUNDS, PALAPELI_PHOTOS, PLASMA_PHOTOS, PLASMA_WALLPAPERS, photos_hard, wallpaper_file

ROOT = Path(__file__).resolve().parent.parent


def originals(folder: Path) -> list[Path]:
    """The photo files photos-hard's originals come from, copied as shipped."""
    folder.mkdir(parents=True)
    files = [save_jpeg(im, folder / f"{name}.jpg", 92) for name, im in sample_photos().items()]
    sources = sorted(PALAPELI_PHOTOS.glob("*.jpg")) + sorted((MATE_BACKGROUNDS / "nature").glob("*.jpg"))
    sources += [wallpaper_file(PLASMA_WALLPAPERS / n) for n in sorted(PLASMA_PHOTOS)]
    for p in sources:
        files.append(Path(shutil.copyfile(p, folder / f"{p.parent.name}-{p.name}")))
    return files


def timed(lib: Library, queries: list[Path], **kwargs) -> tuple[float, float]:
    """Median (wall ms, CPU ms) of one search per query."""
    return median_ms(len(queries), lambda i: lib.search(queries[i], k=10, **kwargs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--depth", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "verify_latency.json")
    args = ap.parse_args()
    domain = photos_hard()
    step = max(1, len(domain.query_labels) // args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = originals(root / "photos")
        n = int((domain.gallery_labels >= 0).sum())
        files += [save_jpeg(im, root / "photos" / "distractors" / f"d{i}.jpg", 90) for i, im in enumerate(domain.gallery[n:])]
        queries = [save_jpeg(domain.query_images[i], root / "queries" / f"q{i}.jpg", 90)
                   for i in range(0, len(domain.query_labels), step)][:args.queries]
        with Library.open(root / "lib") as lib:
            lib.add([root / "photos"])
            lib.search(queries[0], k=10, verify=True)  # warm: model session, OpenCV
            plain_wall, plain_cpu = timed(lib, queries)
            rows = {"plain": {"wall_ms": round(plain_wall, 1), "cpu_ms": round(plain_cpu, 1)}}
            print(f"{len(files)} photo files, {len(queries)} queries; plain search: median {plain_wall:.0f} ms wall, "
                  f"{plain_cpu:.0f} ms CPU")
            for depth in args.depth:
                wall, cpu = timed(lib, queries, verify=True, verify_depth=depth)
                rows[f"verify{depth}"] = {"wall_ms": round(wall, 1), "cpu_ms": round(cpu, 1),
                                          "cpu_ratio": round(cpu / plain_cpu, 2)}
                print(f"--verify-depth {depth}: median {wall:.0f} ms wall, {cpu:.0f} ms CPU ({cpu / plain_cpu:.1f}x plain CPU)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"files": len(files), "queries": len(queries), **rows}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
