"""CPU per image of `lookalike index --ray local` against local indexing, on the same photos,
in the same run: the figure docs/scale-out.md sizes a 100M-image cluster from.

    python bench/ray_index.py --n 96

Photos: the 2-12 MP JPEGs of bench/index_throughput.py (generated once under --workdir).
CPU is counted over every process involved: this one and, for Ray, every process of the
cluster it starts (each inherits a marker variable; a sampler thread reads their
/proc/PID/stat until they exit), split into the driver (this process), the Ray Data actors
and Ray's daemons. Each way indexes N/2 and N photos into new libraries (every photo read,
hashed, decoded and embedded); per image = (CPU(N) - CPU(N/2)) / (N/2) of the driver and the
actors, so fixed costs (the actors' model loads, starting the cluster) drop out; an
unmeasured 8-photo run of each way first takes the first-use imports. The daemons' CPU
follows wall time, not images, and is printed as CPU seconds per second of wall time.
Wall times are printed but on a shared machine only CPU means anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from index_throughput import make_photos
from lookalike import Library

MARK = "LOOKALIKE_BENCH_MARK"
TICKS = os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """CPU seconds of every live process carrying the marker, sampled every 0.1 s (a process's
    last <= 0.1 s before it exits can be missed), by kind: this process (the driver), the Ray
    Data actors (their process title names MapWorker) and Ray's daemons (GCS, raylet, agents,
    idle workers), whose CPU follows wall time rather than images."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()
        self.seen: dict[tuple[int, str], tuple[str, float]] = {}  # (pid, start time) -> (kind, CPU s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if int(entry) != os.getpid():  # this process's own environ shows its start, not the marker
                    with open(f"/proc/{entry}/environ", "rb") as f:
                        if self.marker not in f.read():
                            continue
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kind = "driver" if int(entry) == os.getpid() else "actors" if b"MapWorker" in cmdline else "daemons"
            key = (int(entry), fields[19])  # starttime: a reused pid is another process
            if kind == "daemons" and self.seen.get(key, ("", 0.0))[0] == "actors":
                kind = "actors"  # once an actor, always counted as one
            # Fields after the command name: utime and stime are the 12th and 13th.
            self.seen[key] = (kind, (int(fields[11]) + int(fields[12])) / TICKS)

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self._sample()
        self.start = {k: cpu for k, (_, cpu) in self.seen.items()}
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def cpu_s(self) -> dict[str, float]:
        out = {"driver": 0.0, "actors": 0.0, "daemons": 0.0}
        for k, (kind, cpu) in self.seen.items():
            out[kind] += cpu - self.start.get(k, 0.0)
        return {kind: round(v, 2) for kind, v in out.items()}


def measure(folder: Path, lib_dir: Path, ray: str | None) -> dict:
    marker = uuid.uuid4().hex
    os.environ[MARK] = marker  # inherited by every process Ray starts from here
    with CpuSampler(marker) as cpu:
        t0 = time.perf_counter()
        with Library.open(lib_dir) as lib:
            report = lib.add([folder], ray=ray)
        wall = time.perf_counter() - t0
    return {"cpu_s": cpu.cpu_s(), "wall_s": round(wall, 2), "embedded": report.embedded, "processes": len(cpu.seen)}


def _folder(work: Path, photos: list[Path], n: int) -> Path:
    folder = work / f"ray-photos-{n}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for p in photos[:n]:
            os.link(p, folder / p.name)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=96, help="photos in the larger run (the smaller has half)")
    ap.add_argument("--workdir", default="/tmp/lookalike-bench-index", help="photos are generated here once")
    ap.add_argument("--out", default=None, help="JSON results (default: WORKDIR/bench-ray-N.json)")
    args = ap.parse_args()
    work = Path(args.workdir)
    photos = make_photos(work / "photos", args.n)
    half = args.n // 2
    file_mb = sum(os.path.getsize(p) for p in photos) / len(photos) / 1e6
    result: dict = {"n": args.n, "mean_file_mb": round(file_mb, 2)}
    for name, ray in (("local", None), ("ray_local", "local")):
        # Unmeasured warm-up: first-use imports (ONNX Runtime, Ray, Ray Data) would otherwise
        # land in the smaller run only.
        warm = work / f"lib-{name}-warmup"
        shutil.rmtree(warm, ignore_errors=True)
        measure(_folder(work, photos, 8), warm, ray)
        shutil.rmtree(warm, ignore_errors=True)
        runs = {}
        for n in (half, args.n):
            lib_dir = work / f"lib-{name}-{n}"
            shutil.rmtree(lib_dir, ignore_errors=True)
            runs[n] = measure(_folder(work, photos, n), lib_dir, ray)
            assert runs[n]["embedded"] == n, runs[n]
            shutil.rmtree(lib_dir, ignore_errors=True)
        small, large = runs[half], runs[args.n]
        # Per image: driver + actors, the CPU that grows with images; daemons follow wall time.
        per_image = {kind: (large["cpu_s"][kind] - small["cpu_s"][kind]) / (args.n - half) * 1000
                     for kind in ("driver", "actors")}
        result[name] = {"runs": {str(n): r for n, r in runs.items()},
                        "driver_ms_per_image": round(per_image["driver"], 1),
                        "actors_ms_per_image": round(per_image["actors"], 1),
                        "cpu_ms_per_image": round(per_image["driver"] + per_image["actors"], 1),
                        "daemon_cpu_per_wall_s": round(large["cpu_s"]["daemons"] / large["wall_s"], 3)}
    ratio = result["ray_local"]["cpu_ms_per_image"] / result["local"]["cpu_ms_per_image"]
    result["ray_over_local_cpu"] = round(ratio, 2)
    print(f"{args.n} photos, {file_mb:.1f} MB each on average; CPU ms per image from {half} -> {args.n} photos")
    print(f"{'':10} {'driver':>8} {'actors':>8} {'total':>8} {'daemons CPU s/s':>16} {'wall s':>8}")
    for name in ("local", "ray_local"):
        r = result[name]
        last = r["runs"][str(args.n)]
        print(f"{name:10} {r['driver_ms_per_image']:8.1f} {r['actors_ms_per_image']:8.1f} {r['cpu_ms_per_image']:8.1f} "
              f"{r['daemon_cpu_per_wall_s']:16.3f} {last['wall_s']:8.1f}")
    print(f"Ray / local CPU per image: {ratio:.2f}")
    out = Path(args.out or work / f"bench-ray-{args.n}.json")
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
