"""Crash test: index a changing folder in a subprocess, SIGKILL it at random (seeded) moments,
re-run, and check that nothing is lost or duplicated and no temporary files are left.

Each round changes the folder the way people do (new photos, edited, moved, copied, deleted
and touched files), starts `lookalike index --prune` and kills it with SIGKILL after a random
delay. After the last round one more run completes the work, and the library must hold
exactly one entry per image file, every stored vector must equal a fresh embedding of its
file, search must find each file, SQLite must report no corruption, and only
`library.sqlite` may remain in the library directory.

    python bench/crash_test.py --kills 25 --seed 1 --json crash.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import lookalike
from lookalike import Library
from lookalike.config import cache_dir
from lookalike.demo.samples import sample_photos
from lookalike.imaging import is_image_name
from lookalike.store.embedded import DB_NAME


@dataclass
class CrashReport:
    seed: int
    rounds: int = 0
    kills: int = 0  # runs that were still going when SIGKILL arrived
    kills_after_a_commit: int = 0  # ... of which had already committed part of their work
    finished_before_kill: int = 0
    final_images: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Folder:
    """A folder of real-photo JPEGs that changes between rounds, reproducibly."""

    def __init__(self, root: Path, rng: random.Random, side: int = 256) -> None:
        self.root, self.rng, self.serial = root, rng, 0
        self.photos = []
        for im in sample_photos().values():
            im = im.copy()
            im.thumbnail((side, side))
            self.photos.append(im)

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file() and is_image_name(p))

    def new_image(self, path: Path) -> None:
        """A crop + rotation of a random photo: new content, still a real picture."""
        im = self.rng.choice(self.photos)
        w, h = im.size
        dx, dy = self.rng.randint(0, w // 5), self.rng.randint(0, h // 5)
        im = im.crop((dx, dy, w - self.rng.randint(0, w // 5), h - dy)).rotate(self.rng.uniform(-15, 15))
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path, "JPEG", quality=self.rng.randint(70, 95))

    def add(self, n: int) -> None:
        for _ in range(n):
            self.serial += 1
            self.new_image(self.root / f"d{self.serial % 4}" / f"img{self.serial:05d}.jpg")

    def change(self, each: int) -> None:
        """Edit, move, copy, delete and touch `each` files apiece."""
        files = self.files()
        self.rng.shuffle(files)
        picks = [files[i * each:(i + 1) * each] for i in range(5)]
        for p in picks[0]:
            self.new_image(p)  # edited in place: same path, new content
        for p in picks[1]:
            dest = self.root / "moved" / p.name
            dest.parent.mkdir(exist_ok=True)
            if not dest.exists():
                p.rename(dest)
        for p in picks[2]:
            self.serial += 1
            shutil.copy2(p, p.with_name(f"copy{self.serial:05d}.jpg"))
        for p in picks[3]:
            p.unlink(missing_ok=True)
        for p in picks[4]:
            if p.exists():
                t = time.time() + self.rng.randint(1, 1000)
                os.utime(p, (t, t))


def index_command(folder: Path, library: Path, batch_size: int) -> list[str]:
    return [sys.executable, "-m", "lookalike", "index", str(folder), "--library", str(library),
            "--prune", "--batch-size", str(batch_size), "--json"]


def child_env() -> dict[str, str]:
    """The subprocess imports this same lookalike (a worktree's src/ may shadow an install)."""
    src = str(Path(lookalike.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def db_state(library: Path) -> tuple[int, list[str]]:
    """(rows, problems) read straight from SQLite, as a crash left it."""
    db = library / DB_NAME
    if not db.exists():
        return 0, []
    try:
        con = sqlite3.connect(db, timeout=30)
        con.execute("SELECT 1 FROM images LIMIT 1")
    except sqlite3.OperationalError:  # a full or read-only disk: SQLite cannot create its -shm
        con = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    try:
        problems = []
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            problems.append(f"integrity_check: {ok}")
        n, paths = con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM images").fetchone()
        if n != paths:
            problems.append(f"{n - paths} duplicate paths")
        for id_, blob in con.execute("SELECT id, vector FROM images"):
            norm = float(np.linalg.norm(np.frombuffer(blob, np.float32)))
            if abs(norm - 1) > 1e-3:
                problems.append(f"id {id_}: vector norm {norm:.4f}")
        return n, problems
    finally:
        con.close()


def verify(library: Path, folder: Path, files: list[Path]) -> list[str]:
    """Everything the library must satisfy once a run has completed; [] when it does."""
    problems: list[str] = []
    with Library.open(library, create=False) as lib:
        records = lib.records()
        by_path = {r.path: r for r in records}
        want = {str(p) for p in files}
        if len(by_path) != len(records):
            problems.append(f"{len(records) - len(by_path)} duplicate entries")
        if missing := want - set(by_path):
            problems.append(f"{len(missing)} files not indexed, e.g. {sorted(missing)[0]}")
        if extra := set(by_path) - want:
            problems.append(f"{len(extra)} entries without a file, e.g. {sorted(extra)[0]}")
        common = sorted(want & set(by_path))
        for path in common:
            r, st = by_path[path], os.stat(path)
            sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            if (r.sha256, r.size, r.mtime) != (sha, st.st_size, st.st_mtime):
                problems.append(f"{path}: stale record (hash/size/mtime differ from the file)")
            if not r.tags:
                problems.append(f"{path}: no tags")
        if common:
            stored = lib.store.vectors([by_path[p].id for p in common])
            fresh = np.concatenate([lib.embed(common[i:i + 32]) for i in range(0, len(common), 32)])
            worst = np.abs(stored - fresh).max(axis=1)
            problems += [f"{p}: stored vector differs from a fresh embedding by {d:.2e}"
                         for p, d in zip(common, worst) if d > 1e-4]
            for path in common[:: max(1, len(common) // 10)]:  # search finds the file (or a byte-identical copy)
                hit = lib.search(Path(path).read_bytes(), k=1)
                if not hit or hit[0].score < 0.999 or by_path[hit[0].path].sha256 != by_path[path].sha256:
                    problems.append(f"search for {path} found {hit[:1]}")
    problems += leftovers(library)
    return problems


def leftovers(library: Path) -> list[str]:
    """Temporary files: anything besides the database in the library directory once no
    process has it open (SQLite's -wal/-shm are removed by the last clean close), and
    half-written ONNX exports in the model cache."""
    extra = [p.name for p in library.iterdir() if p.name != DB_NAME and p.name != "model-state"]
    tmp = [p.name for p in (cache_dir() / "onnx").glob("*.tmp")] if (cache_dir() / "onnx").exists() else []
    return ([f"left in the library directory: {extra}"] if extra else []) + ([f"left in the model cache: {tmp}"] if tmp else [])


def run_crash_test(workdir: Path, kills: int, seed: int, initial: int = 30, per_round: int = 8,
                   batch_size: int = 2, log=print) -> CrashReport:
    t0 = time.perf_counter()
    rng = random.Random(seed)
    rep = CrashReport(seed)
    folder, library = workdir / "photos", workdir / "library"
    photos = Folder(folder, rng)
    photos.add(initial)
    env = child_env()

    def run(plan: tuple[str, float] | None) -> tuple[bool, float]:
        """plan: None (let it finish), ("time", seconds) or ("commits", n): kill right after
        the n-th commit (seen as the WAL file changing) plus a random fraction of a second."""
        start = time.perf_counter()
        proc = subprocess.Popen(index_command(folder, library, batch_size), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if plan is not None:
            if plan[0] == "time":
                deadline = start + plan[1]
            else:
                wal, commits, last = library / (DB_NAME + "-wal"), 0, _stat(library / (DB_NAME + "-wal"))
                while proc.poll() is None and commits < plan[1]:
                    time.sleep(0.01)
                    now = _stat(wal)
                    if now is not None and now != last:
                        commits, last = commits + 1, now
                deadline = time.perf_counter() + rng.uniform(0, 0.3)
            while proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True, time.perf_counter() - start
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            rep.problems.append(f"index exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
        return False, time.perf_counter() - start

    # The unkilled first run says how long a run takes, so timed kills spread over all of it.
    _, typical = run(None)
    log(f"initial index {typical:.1f} s; now killing {kills} times (seed {seed})")
    durations = [typical]  # of unkilled runs: the kill window follows the machine's speed
    while rep.kills < kills and rep.rounds < 3 * kills:
        rep.rounds += 1
        photos.add(per_round)
        photos.change(max(1, per_round // 4))
        before, _ = db_state(library)
        # A third of the kills at a random time (often during start-up, scanning or hashing),
        # the rest just after a random one of the first commits, while batches are being written.
        if rng.random() < 1 / 3:
            plan = ("time", rng.uniform(0.05, 1.0) * float(np.median(durations[-5:])))
        else:
            plan = ("commits", rng.randint(1, 4))
        killed, took = run(plan)
        rows, problems = db_state(library)
        rep.problems += [f"after kill {rep.kills + 1}: {p}" for p in problems]
        if killed:
            rep.kills += 1
            rep.kills_after_a_commit += rows != before
            log(f"  kill {rep.kills:2d} at {took:5.2f} s ({plan[0]} {plan[1]:.2f}): {before} -> {rows} rows, "
                f"{'consistent' if not problems else problems}")
        else:
            rep.finished_before_kill += 1
            durations.append(took)
    _, _ = run(None)  # completes what the last kill interrupted
    files = photos.files()
    rep.problems += verify(library, folder, files)
    with Library.open(library, create=False) as lib:
        rep.final_images = len(lib)
    rep.problems += leftovers(library)  # again, after this process's own close
    rep.seconds = round(time.perf_counter() - t0, 1)
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--initial", type=int, default=60, help="images before the first kill")
    ap.add_argument("--per-round", type=int, default=12, help="new images per round (plus edits, moves, copies, deletions)")
    ap.add_argument("--batch-size", type=int, default=2, help="small batches: many commits for the kills to hit")
    ap.add_argument("--workdir", type=Path, help="keep the folder and library here (default: a temp dir, removed)")
    ap.add_argument("--json", type=Path, help="write the report here")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lookalike-crash-"))
    try:
        rep = run_crash_test(work, args.kills, args.seed, args.initial, args.per_round, args.batch_size)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{rep.kills} kills survived ({rep.kills_after_a_commit} after part of the run had committed, "
          f"{rep.finished_before_kill} runs finished first) in {rep.rounds} rounds; final library {rep.final_images} images; "
          f"{len(rep.problems)} problems; {rep.seconds} s")
    for p in rep.problems:
        print("  PROBLEM", p)
    if args.json:
        args.json.write_text(json.dumps(asdict(rep), indent=2))
    sys.exit(1 if rep.problems or rep.kills < args.kills else 0)


if __name__ == "__main__":
    main()
