"""Indexing throughput: raw ONNX img/s on pre-decoded tensors vs end-to-end `Library.add`
img/s (read + hash + JPEG decode at reduced scale + resize in worker threads, batched
inference, one SQLite transaction per batch) on the same multi-megapixel JPEGs, in one run.

    python bench/index_throughput.py --n 120 --rounds 3

Photos: the bundled real photos (`lookalike.demo.samples.sample_photos()`), randomly cropped and
resized to 2-12 MP JPEGs under --workdir (generated once).

Before/after: "before" is the old ONNX Runtime session: one for everything, on all CPUs,
idle pool threads spin-waiting. "Now": pool threads sleep when idle, and indexing runs the
model on `--indexing-threads` (default: the setting's, all CPUs; `OnnxExtractor.for_indexing`);
with fewer, the model on all CPUs is measured too. `--model effnet-lite0-lite1` measures the
default pair (both networks get such sessions). Each round measures raw ONNX with every session, then
end to end with each; the median over rounds is reported, so load drift on a shared machine
hits every figure alike. Raw ONNX, the baseline of every ratio, is the fastest raw rate.
Also prints process CPU per image, which other processes on a busy machine disturb far less
than wall time. Target: end to end >= 0.7 x raw ONNX.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Library
from lookalike.config import cpu_threads
from lookalike.demo.samples import sample_photos
from lookalike.imaging import decode_image, read_file
from lookalike.models import get_extractor
from lookalike.models.ensemble import EnsembleExtractor
from lookalike.models.onnx_extractor import OnnxExtractor

Extractor = OnnxExtractor | EnsembleExtractor  # an ONNX model, or the default pair of two


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n JPEGs of 2-12 megapixels cropped/resized from the bundled photos (cached)."""
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("*.jpg"))
    if len(existing) >= n:
        return existing[:n]
    rng = np.random.default_rng(seed)
    photos = list(sample_photos().values())
    paths = []
    for i in range(n):
        im = photos[i % len(photos)]
        w, h = im.size
        # A random crop keeps every file distinct (different content hash and features).
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        mp = rng.uniform(2.0, 12.0) * 1e6
        scale = np.sqrt(mp / (cw * ch))
        out = im.crop((x, y, x + cw, y + ch)).resize((int(cw * scale), int(ch * scale)), Image.Resampling.BILINEAR)
        p = folder / f"photo-{i:05d}.jpg"
        out.save(p, "JPEG", quality=int(rng.integers(80, 95)))
        paths.append(p)
        print(f"\rgenerating photos {i + 1}/{n}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return paths


def onnx_extractor(model: str, threads: int | None = None, spinning: bool = False,
                   indexing_threads: int | None = None) -> Extractor:
    """The registry's ONNX extractor for `model` with its own sessions: `threads` intra-op
    threads (default: the CPUs), idle threads spin-waiting (`spinning`, the old session) or
    not, `indexing_threads` while indexing (default: the model's choice). The default pair
    gets such sessions for both of its networks."""
    def own(base: OnnxExtractor) -> OnnxExtractor:
        return OnnxExtractor(base.name, base.onnx_path, base.input_size, base.dim, labels=base.labels,
                             threads=threads, spinning=spinning, indexing_threads=indexing_threads)

    base = get_extractor(model)
    if isinstance(base, EnsembleExtractor):
        return EnsembleExtractor(base.name, own(base.first), own(base.second))
    assert isinstance(base, OnnxExtractor), f"{model} is not an ONNX model"
    return own(base)


def parts(ext: Extractor) -> list[OnnxExtractor]:
    return [ext.first, ext.second] if isinstance(ext, EnsembleExtractor) else [ext]


def same_sessions(a: Extractor, b: Extractor) -> bool:
    return all(x is y for x, y in zip(parts(a), parts(b)))


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raw_rate(ext: Extractor, tensors: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(img/s, CPU ms per image) of the model alone."""
    ext.embed_batch(tensors[:batch_size])  # warm-up: session creation, first-run allocations
    c, t0 = cpu_s(), time.perf_counter()
    for s in range(0, len(tensors), batch_size):
        ext.embed_batch(tensors[s:s + batch_size])
    return len(tensors) / (time.perf_counter() - t0), (cpu_s() - c) / len(tensors) * 1000


def predecode(ext: Extractor, paths: list[Path]) -> tuple[np.ndarray, float]:
    """Model inputs for `paths` exactly as the indexer prepares them (read, hash, decode at
    reduced scale, resize), on one thread; also the CPU ms per image that costs."""
    c = cpu_s()
    out = []
    for p in paths:
        data = read_file(p)
        hashlib.sha256(data).hexdigest()
        out.append(ext.preprocess(decode_image(data, str(p), draft_size=ext.draft_size)))
    return np.stack(out), (cpu_s() - c) / len(paths) * 1000


def end_to_end(ext: Extractor, folder: Path, lib_dir: Path, n: int, batch_size: int,
               workers: int | None) -> tuple[float, float]:
    """(img/s, process CPU ms per image) of `Library.add` on `folder` into a fresh library."""
    shutil.rmtree(lib_dir, ignore_errors=True)
    c = cpu_s()
    with Library.open(lib_dir, model=ext.name) as lib:
        lib._extractor = ext  # the session under test, already warm
        report = lib.add([folder], batch_size=batch_size, workers=workers)
    assert report.embedded == n and not report.failed, report.to_dict()
    return report.images_per_second, (cpu_s() - c) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=120, help="photos")
    ap.add_argument("--model", default="effnet-lite0")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="decode threads [default: the indexer's]")
    ap.add_argument("--indexing-threads", type=int, default=None,
                    help="ONNX Runtime threads while indexing, now [default: the setting's, all CPUs]")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are reported")
    ap.add_argument("--workdir", default="/tmp/lookalike-bench/index")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    work = Path(args.workdir)
    paths = make_photos(work / "photos", args.n)
    folder = work / f"photos-{len(paths)}"  # exactly the n photos, as links
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for p in paths:
        (folder / p.name).symlink_to(p.resolve())
    megapixels = [Image.open(p).size[0] * Image.open(p).size[1] / 1e6 for p in paths]

    cpus = cpu_threads()
    old = onnx_extractor(args.model, spinning=True, indexing_threads=cpus)  # one session for everything
    new = onnx_extractor(args.model, indexing_threads=args.indexing_threads)
    indexing = new.for_indexing()
    raw_sessions = {"before": old, "queries": new, "indexing": indexing}
    if same_sessions(indexing, new):
        del raw_sessions["indexing"]
    e2e_sessions = {"before": old, "after": new}
    if not same_sessions(indexing, new):  # sleeping threads alone: indexing on every CPU's thread, as queries run
        e2e_sessions["all_threads"] = onnx_extractor(args.model, indexing_threads=cpus)
    tensors, prepare_ms = predecode(new, paths)
    runs: dict[str, list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        for name, ext in raw_sessions.items():
            runs.setdefault(f"raw_{name}", []).append(raw_rate(ext, tensors, args.batch_size))
        for name, ext in e2e_sessions.items():
            runs.setdefault(f"end_to_end_{name}", []).append(
                end_to_end(ext, folder, work / "library", len(paths), args.batch_size, args.workers))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1][0]:.1f} img/s" for k, v in runs.items()),
              file=sys.stderr, flush=True)
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in runs.items()}
    raw = max(med[f"raw_{name}"][0] for name in raw_sessions)
    # The model's own CPU in each end-to-end run: the raw CPU of the session the indexer used.
    model_ms = {"before": med["raw_before"][1], "all_threads": med["raw_queries"][1],
                "after": med[f"raw_{'indexing' if 'indexing' in raw_sessions else 'queries'}"][1]}
    non_model = {k: med[f"end_to_end_{k}"][1] - model_ms[k] for k in e2e_sessions}
    result = {"n": len(paths), "model": args.model, "batch_size": args.batch_size, "workers": args.workers,
              "model_threads": {"before": cpus, "queries": cpus, "indexing": parts(indexing)[0]._threads},
              "rounds": args.rounds, "cpus": cpus, "load_average": os.getloadavg(),
              "megapixels_mean": float(np.mean(megapixels)),
              "megapixels_range": [float(min(megapixels)), float(max(megapixels))],
              "bytes_mean": float(np.mean([p.stat().st_size for p in paths])),
              "raw_img_s": raw, "target": 0.7, "prepare_cpu_ms_per_image": prepare_ms,
              "runs": {k: [{"img_s": a, "cpu_ms_per_image": b} for a, b in v] for k, v in runs.items()},
              **{f"{k}_img_s": v[0] for k, v in med.items()},
              **{f"{k}_cpu_ms_per_image": v[1] for k, v in med.items()},
              **{f"non_model_cpu_ms_{k}": v for k, v in non_model.items()},
              **{f"non_model_over_model_{k}": v / model_ms[k] for k, v in non_model.items()},
              "ratio_before": med["end_to_end_before"][0] / raw, "ratio_after": med["end_to_end_after"][0] / raw}
    print(f"{len(paths)} JPEGs, {result['megapixels_mean']:.1f} MP mean ({min(megapixels):.1f}-{max(megapixels):.1f}), "
          f"{args.model}, batch {args.batch_size}, {cpus} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"median of {args.rounds} rounds")
    print(f"{'measure':<62} {'img/s':>7} {'/ raw':>6} {'CPU ms/img':>11}")
    rows = [(f"raw ONNX, {cpus} threads spin-waiting (before)", "raw_before"),
            (f"raw ONNX, {cpus} threads sleeping (queries now)", "raw_queries"),
            (f"raw ONNX, {parts(indexing)[0]._threads} thread(s) sleeping (indexing now)", "raw_indexing"),
            ("end to end Library.add, before", "end_to_end_before"),
            (f"end to end Library.add, model on {cpus} threads sleeping", "end_to_end_all_threads"),
            ("end to end Library.add, now", "end_to_end_after")]
    for label, key in rows:
        if key in med:
            print(f"{label:<62} {med[key][0]:7.1f} {med[key][0] / raw:6.2f} {med[key][1]:11.1f}")
    for k, label in (("before", "before"), ("all_threads", f"model on {cpus} threads sleeping"), ("after", "now")):
        if k not in non_model:
            continue
        print(f"non-model CPU per image {label}: end to end minus its model's raw CPU = {non_model[k]:.1f} ms "
              f"= {non_model[k] / model_ms[k]:.2f} x model")
    print(f"read+hash+decode+resize alone, one thread: {prepare_ms:.1f} ms per image")
    print(f"ratio end to end / raw ONNX: before {result['ratio_before']:.2f}, now {result['ratio_after']:.2f} "
          f"(target >= 0.7: {'met' if result['ratio_after'] >= 0.7 else 'missed'})")
    out = Path(args.out or work / f"bench-index-{len(paths)}.json")
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
