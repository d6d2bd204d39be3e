"""How long `lookalike watch` takes to follow a change: from a file written (or renamed,
or deleted) in a watched folder to the library showing it.

    python bench/watch_latency.py --n 20 --debounce 2.0

Writes N distinct JPEGs (the sample gallery's images) one at a time, waits for each to be
indexed, then renames and deletes them one at a time; prints median and max per kind."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lookalike import Library
from lookalike.demo.samples import build_gallery
from lookalike.engine.watch import Watcher


def wait(condition, limit: float = 60.0) -> float:
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > limit:
            raise TimeoutError("the library did not follow within 60 s")
        time.sleep(0.01)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--debounce", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_gallery(root / "gallery")
        sources = sorted((root / "gallery").rglob("*.jpg"))[: args.n]
        watched = root / "watched"
        watched.mkdir()
        times: dict[str, list[float]] = {"add": [], "move": [], "delete": []}
        with Library.open(root / "lib") as lib:
            lib.extractor.embed_batch  # noqa: B018 - load the model before timing
            watcher = Watcher(lib, [watched], debounce=args.debounce)
            watcher.start()
            try:
                for i, src in enumerate(sources):
                    dest = watched / f"img{i:03d}.jpg"
                    dest.write_bytes(src.read_bytes())
                    times["add"].append(wait(lambda d=dest: lib.store.find_path(str(d)) is not None))
                for i in range(len(sources)):
                    old, new = watched / f"img{i:03d}.jpg", watched / f"renamed{i:03d}.jpg"
                    old.rename(new)
                    times["move"].append(wait(lambda n=new: lib.store.find_path(str(n)) is not None))
                for i in range(len(sources)):
                    gone = watched / f"renamed{i:03d}.jpg"
                    gone.unlink()
                    times["delete"].append(wait(lambda g=gone: lib.store.find_path(str(g)) is None))
            finally:
                watcher.stop()
    print(f"debounce {args.debounce} s, {len(sources)} files each")
    print("| change | median | max |\n|---|---|---|")
    for kind, ts in times.items():
        print(f"| {kind} | {statistics.median(ts):.2f} s | {max(ts):.2f} s |")


if __name__ == "__main__":
    main()
