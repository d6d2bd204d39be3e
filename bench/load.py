"""Load test: `lookalike serve` in a subprocess on 127.0.0.1 over a generated library, hit by
N concurrent clients (default 50) for T seconds (default 60), each looping over a mix of

- upload:  POST /api/search with a JPEG the library has never seen (decode + model + search);
- similar: GET /api/images/{id}/similar ("more like this": stored vector, no model);
- thumb:   GET /api/images/{id}/thumb (cached JPEG thumbnails, made on first request);
- add:     POST /api/images with the API key (a few: at most --max-adds, generated images).

Every answer is checked: a non-2xx status or a transport error is an error; a search whose
top hit differs from the engine's own answer (computed in-process first) is "wrong". The
server's resident memory (VmRSS) is sampled every second: start (after warm-up), middle,
end. Baseline, same run: each kind alone from one client for a few seconds; the table gives
the p50 under load / p50 alone. Bounded: --seconds, and at most --max-requests in all.

    nice -n 10 python bench/load.py                       # 50 clients, 60 s, sample gallery
    python bench/load.py --clients 10 --seconds 10 --json /tmp/load.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image, ImageDraw
from rich.console import Console
from rich.table import Table

from common import free_port, indexed_sample_gallery, start_serve_process, unseen_queries
from lookalike import Library

KEY = "load-test-key"
KINDS = ("upload", "similar", "thumb", "add")
MIX = {"upload": 0.30, "similar": 0.35, "thumb": 0.33, "add": 0.02}


def jpeg(im: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def generated_image(seed: int) -> bytes:
    """A distinct synthetic picture per seed (random shapes), unlike any photo in the gallery."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (256, 192), tuple(int(v) for v in rng.integers(0, 255, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = rng.integers(0, 200, 2)
        draw.ellipse((int(x0), int(y0), int(x0 + rng.integers(10, 80)), int(y0 + rng.integers(10, 80))),
                     fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return jpeg(im, 90)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Load:
    def __init__(self, client: httpx.AsyncClient, queries: list[bytes], expected_upload: list[int], ids: list[int],
                 expected_similar: dict[int, int], max_adds: int, seed: int) -> None:
        self.client, self.queries, self.expected_upload = client, queries, expected_upload
        self.ids, self.expected_similar = ids, expected_similar
        self.max_adds, self.adds = max_adds, 0
        self.rng = random.Random(seed)
        self.latency: dict[str, list[float]] = {k: [] for k in KINDS}
        self.errors: dict[str, int] = {k: 0 for k in KINDS}
        self.wrong: dict[str, int] = {k: 0 for k in KINDS}
        self.error_samples: list[str] = []
        self.requests = 0

    def pick(self) -> str:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "add" and self.adds >= self.max_adds:
            kind = "upload"
        return kind

    async def one(self, kind: str) -> None:
        self.requests += 1
        t0 = time.perf_counter()
        ok, right = False, True
        try:
            if kind == "upload":
                q = self.rng.randrange(len(self.queries))
                r = await self.client.post("/api/search?k=10", files={"file": ("q.jpg", self.queries[q], "image/jpeg")})
                ok = r.status_code == 200
                right = ok and r.json()["results"][0]["id"] == self.expected_upload[q]
            elif kind == "similar":
                i = self.rng.choice(self.ids)
                r = await self.client.get(f"/api/images/{i}/similar", params={"k": 10})
                ok = r.status_code == 200
                right = ok and r.json()["results"][0]["id"] == self.expected_similar[i]
            elif kind == "thumb":
                r = await self.client.get(f"/api/images/{self.rng.choice(self.ids)}/thumb")
                ok = r.status_code == 200 and r.content[:2] == b"\xff\xd8"
            else:
                self.adds += 1
                r = await self.client.post("/api/images", headers={"X-API-Key": KEY},
                                           files={"file": (f"gen-{self.adds}.jpg", generated_image(self.adds), "image/jpeg")})
                ok = r.status_code in (200, 201)
            if not ok and len(self.error_samples) < 10:
                self.error_samples.append(f"{kind}: {r.status_code} {r.text[:200]}")
        except httpx.HTTPError as e:
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{kind}: {type(e).__name__}: {e}")
        self.latency[kind].append((time.perf_counter() - t0) * 1000)
        self.errors[kind] += not ok
        self.wrong[kind] += ok and not right

    async def client_loop(self, stop_at: float, max_requests: int, only: str | None = None) -> None:
        while time.monotonic() < stop_at and self.requests < max_requests:
            await self.one(only or self.pick())


def stats(latencies: list[float], wall_s: float) -> dict:
    if not latencies:
        return {"requests": 0}
    arr = np.asarray(latencies)
    return {"requests": len(arr), "per_second": round(len(arr) / wall_s, 1),
            "p50_ms": round(float(np.percentile(arr, 50)), 1), "p99_ms": round(float(np.percentile(arr, 99)), 1),
            "max_ms": round(float(arr.max()), 1)}


async def run(args: argparse.Namespace, base_url: str, pid: int, queries: list[bytes], expected_upload: list[int],
              ids: list[int], expected_similar: dict[int, int], con: Console) -> dict:
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive timeout closes
    # them, so a request never races the server's close on a reused connection.
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients, keepalive_expiry=2)
    async with httpx.AsyncClient(base_url=base_url, timeout=args.timeout, limits=limits) as client:
        # warm-up: every thumbnail once, a few searches (so the memory "start" is after first-use caches)
        warm = Load(client, queries, expected_upload, ids, expected_similar, 0, args.seed)
        for i in ids:
            await client.get(f"/api/images/{i}/thumb")
        for _ in range(10):
            await warm.one("upload")
            await warm.one("similar")

        # baseline: each kind alone, one client
        baseline: dict[str, dict] = {}
        for kind in ("upload", "similar", "thumb"):
            solo = Load(client, queries, expected_upload, ids, expected_similar, 0, args.seed)
            t0 = time.monotonic()
            await solo.client_loop(t0 + args.baseline_seconds, 10_000, only=kind)
            baseline[kind] = stats(solo.latency[kind], time.monotonic() - t0)

        con.print(f"{args.clients} clients for {args.seconds:g} s...")
        load = Load(client, queries, expected_upload, ids, expected_similar, args.max_adds, args.seed)
        rss: list[tuple[float, float]] = []
        t0 = time.monotonic()
        stop_at = t0 + args.seconds

        async def sample() -> None:
            while time.monotonic() < stop_at:
                rss.append((round(time.monotonic() - t0, 1), round(rss_mb(pid), 1)))
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample())
        await asyncio.wait_for(asyncio.gather(*(load.client_loop(stop_at, args.max_requests) for _ in range(args.clients))),
                               timeout=args.seconds + args.timeout + 30)
        wall = time.monotonic() - t0
        await sampler
        rss.append((round(wall, 1), round(rss_mb(pid), 1)))
        healthy = (await client.get("/healthz")).status_code == 200

    all_lat = [v for k in KINDS for v in load.latency[k]]
    mid = min(rss, key=lambda s: abs(s[0] - wall / 2))[1]
    return {
        "clients": args.clients, "seconds": round(wall, 1), "requests": len(all_lat),
        "per_second": round(len(all_lat) / wall, 1), "errors": sum(load.errors.values()), "wrong": sum(load.wrong.values()),
        "kinds": {k: {**stats(load.latency[k], wall), "errors": load.errors[k], "wrong": load.wrong[k]} for k in KINDS},
        "overall": stats(all_lat, wall), "baseline_one_client": baseline,
        "rss_mb": {"start": rss[0][1], "middle": mid, "end": rss[-1][1], "max": max(v for _, v in rss),
                   "growth_start_to_end": round(rss[-1][1] - rss[0][1], 1), "growth_middle_to_end": round(rss[-1][1] - mid, 1)},
        "rss_samples": rss, "error_samples": load.error_samples, "healthy_after": healthy, "adds": load.adds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", type=Path, help="existing library, used as is (default: the sample gallery, generated)")
    ap.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    ap.add_argument("--seconds", type=float, default=60, help="how long the load runs (default 60)")
    ap.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests in all")
    ap.add_argument("--max-adds", type=int, default=40, help="at most this many POST /api/images (default 40)")
    ap.add_argument("--baseline-seconds", type=float, default=4, help="one-client baseline per kind (default 4 s)")
    ap.add_argument("--timeout", type=float, default=60, help="per-request timeout in seconds")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=Path("artifacts/bench-load.json"), help="where to write results")
    args = ap.parse_args()
    con = Console(width=150)

    tmp = tempfile.TemporaryDirectory(prefix="lookalike-load-")
    library = args.library
    if library is None:
        root = Path(tmp.name)
        con.print("building and indexing the sample gallery...")
        library = indexed_sample_gallery(root)
    queries = unseen_queries()
    with Library.open(library, create=False) as lib:
        ids = [r.id for r in lib.records()]
        expected_upload = [lib.search(q, k=1)[0].id for q in queries]
        expected_similar = {i: lib.search(i, k=1)[0].id for i in ids}
        n_images = len(lib)

    port = free_port()
    server = start_serve_process(library, port, env={"LOOKALIKE_API_KEY": KEY})
    try:
        result = asyncio.run(run(args, f"http://127.0.0.1:{port}", server.pid, queries, expected_upload, ids,
                                 expected_similar, con))
    finally:
        server.terminate()
        server.wait(timeout=30)
        tmp.cleanup()

    table = Table(title=f"{args.clients} clients, {result['seconds']} s, {n_images} images, {os.cpu_count()} CPUs: "
                        f"{result['requests']} requests, {result['per_second']} req/s, {result['errors']} errors, "
                        f"{result['wrong']} wrong (ratio = p50 under load / p50 of one client alone, same run)",
                  title_justify="left")
    for col in ("kind", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "wrong", "alone p50", "ratio"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for k in KINDS:
        r, b = result["kinds"][k], result["baseline_one_client"].get(k)
        if not r["requests"]:
            continue
        table.add_row(k, str(r["requests"]), f"{r['per_second']}", f"{r['p50_ms']}", f"{r['p99_ms']}", f"{r['max_ms']}",
                      str(r["errors"]), str(r["wrong"]), f"{b['p50_ms']}" if b else "-",
                      f"{r['p50_ms'] / b['p50_ms']:.1f}" if b else "-")
    con.print(table)
    m = result["rss_mb"]
    con.print(f"server RSS: start {m['start']} MB, middle {m['middle']} MB, end {m['end']} MB (max {m['max']} MB); "
              f"growth middle->end {m['growth_middle_to_end']} MB; healthy after: {result['healthy_after']}")
    for line in result["error_samples"]:
        con.print(f"  {line}", markup=False)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"images": n_images, "cpus": os.cpu_count(), "python": platform.python_version(), **result}
    args.json.write_text(json.dumps(report, indent=1))
    con.print(f"wrote {args.json}")
    if result["errors"] or not result["healthy_after"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
