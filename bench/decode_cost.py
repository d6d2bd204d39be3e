"""Indexing CPU per image, stage by stage, against the model's CPU per image, in the same run:
read, content hash (SHA-256, with BLAKE3 / xxh3-128 where installed, for comparison), JPEG
decode at reduced DCT scale (Pillow draft mode vs simplejpeg / libjpeg-turbo; full-size and
greyscale decodes for reference), the resize to the model's input, the record's fields
(EXIF, file facts) and the SQLite write, as the indexer does them for new 2-12 MP JPEGs. Single thread, CPU time (not wall time), best of
three passes, so load from other processes on a shared machine inflates every figure alike.

The model is measured three ways on the same tensors, batch 32: ONNX Runtime as the indexer
runs it now (half the CPUs' threads, idle pool threads sleep; `OnnxExtractor.for_indexing`),
as queries run it (all CPUs, sleeping), and as everything ran it before (all CPUs, idle pool
threads spin-waiting, which counts as CPU). "x model" is against the first.

    python bench/decode_cost.py --n 40

Photos: the same 2-12 MP JPEGs as bench/index_throughput.py (generated once under --workdir).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

from index_throughput import make_photos, onnx_extractor
from lookalike import Library, imaging
from lookalike.engine.fields import ImageInfo, record_fields
from lookalike.engine.media_fields import image_fields
from lookalike.imaging import decode_image, image_format, original_size, read_file
from lookalike.store import ImageRecord, Upsert


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_item_ms(fn, items: list, repeat: int = 3) -> float:
    """Best of `repeat` passes (the least disturbed by other processes), CPU ms per item."""
    best = float("inf")
    for _ in range(repeat):
        c = cpu_s()
        for x in items:
            fn(x)
        best = min(best, (cpu_s() - c) / len(items) * 1000)
    return best


def model_ms(ext, tensors: np.ndarray, batch: int = 32) -> float:
    """CPU ms per image of `ext` on `tensors` in batches (warm session, best of 3)."""
    ext.embed_batch(tensors[:batch])
    starts = list(range(0, len(tensors), batch))
    return per_item_ms(lambda s: ext.embed_batch(tensors[s:s + batch]), starts) * len(starts) / len(tensors)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--model", default="effnet-lite0")
    ap.add_argument("--workdir", default="/tmp/lookalike-bench/index")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    paths = make_photos(Path(args.workdir) / "photos", args.n)
    blobs = [read_file(p) for p in paths]
    mp = float(np.mean([Image.open(p).size[0] * Image.open(p).size[1] / 1e6 for p in paths]))
    ext = onnx_extractor(args.model)
    size = ext.input_size

    def decode_with(fast: bool):
        def run(b: bytes):
            imaging.USE_SIMPLEJPEG = fast
            return decode_image(b, draft_size=size)
        return run

    stages = {
        "read": per_item_ms(read_file, paths),
        "sha256": per_item_ms(lambda b: hashlib.sha256(b).hexdigest(), blobs),
    }
    # Faster hashes for comparison only (not project dependencies).
    if importlib.util.find_spec("blake3") is not None:
        import blake3

        stages["blake3"] = per_item_ms(lambda b: blake3.blake3(b).hexdigest(), blobs)
    if importlib.util.find_spec("xxhash") is not None:
        import xxhash

        stages["xxh3_128"] = per_item_ms(lambda b: xxhash.xxh3_128_hexdigest(b), blobs)
    stages["decode_pillow_draft"] = per_item_ms(decode_with(False), blobs)
    stages["decode_simplejpeg"] = per_item_ms(decode_with(True), blobs)
    # Where decoding's floor is (not used by the indexer): the same decoder at full size, and
    # at the reduced scale in greyscale (no chroma output, no colour conversion).
    stages["decode_full_size"] = per_item_ms(lambda b: simplejpeg.decode_jpeg(b, colorspace="RGB"), blobs)
    stages["decode_scaled_grey"] = per_item_ms(
        lambda b: simplejpeg.decode_jpeg(b, colorspace="GRAY", min_height=size, min_width=size), blobs)
    decoded = [decode_image(b, draft_size=size) for b in blobs]
    stages["resize_to_input"] = per_item_ms(ext.preprocess, decoded)

    infos = [(str(p), b, im, p.stat()) for p, b, im in zip(paths, blobs, decoded)]

    def fields(item):
        path, data, im, st = item
        w, h = original_size(im)
        return record_fields(path, ImageInfo(image_format(im), w, h, st.st_size, st.st_mtime),
                             image_fields(data, st.st_mtime))

    stages["fields_exif"] = per_item_ms(fields, infos)
    records = [(ImageRecord(p, hashlib.sha256(b).hexdigest(), st.st_size, st.st_mtime, *original_size(im),
                            [("tabby", 0.5)] * 50, fields=fields((p, b, im, st))), p) for p, b, im, st in infos]
    vectors = np.random.default_rng(0).standard_normal((len(records), ext.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lib_dir = Path(tempfile.mkdtemp(prefix="decode-cost-"))
    with Library.open(lib_dir, model=args.model) as lib:
        passes = iter(range(1000))

        def write_batch(start: int) -> None:
            # Fresh paths each pass, so every write inserts, as indexing new files does.
            k = next(passes)
            ups = [Upsert(ImageRecord(f"{p}.{k}", r.sha256, r.size, r.mtime, r.width, r.height, r.tags, fields=r.fields),
                          vectors[start + i]) for i, (r, p) in enumerate(records[start:start + 32])]
            lib.store.write(ups)
        starts = list(range(0, len(records), 32))
        stages["sqlite_write"] = per_item_ms(write_batch, starts) * len(starts) / len(records)
    shutil.rmtree(lib_dir, ignore_errors=True)

    tensors = np.stack([ext.preprocess(im) for im in decoded])
    stages["model"] = model_ms(ext.for_indexing(), tensors)
    stages["model_queries_session"] = model_ms(ext, tensors)
    stages["model_before"] = model_ms(onnx_extractor(args.model, spinning=True), tensors)

    common = stages["read"] + stages["sha256"] + stages["resize_to_input"] + stages["fields_exif"] + stages["sqlite_write"]
    non_model = common + stages["decode_simplejpeg"]
    non_model_pillow = common + stages["decode_pillow_draft"]
    result = {"n": len(paths), "megapixels_mean": mp, "model": args.model, "cpu_ms_per_image": stages,
              "non_model_ms": non_model, "non_model_pillow_ms": non_model_pillow,
              "indexing_model_threads": ext.for_indexing()._threads,
              "non_model_over_model": non_model / stages["model"],
              "non_model_over_model_before": non_model / stages["model_before"]}
    print(f"{len(paths)} JPEGs, {mp:.1f} MP mean, {args.model}; CPU ms per image (1 thread, best of 3)")
    for name, ms in stages.items():
        print(f"  {name:<24} {ms:7.2f} ms  ({ms / stages['model']:.2f} x model)")
    print(f"all but the model (read+SHA-256+simplejpeg+resize+fields+SQLite): {non_model:.2f} ms = "
          f"{result['non_model_over_model']:.2f} x the model as indexing runs it now "
          f"({result['non_model_over_model_before']:.2f} x the model as it ran before)")
    out = Path(args.out or Path(args.workdir) / "decode-cost.json")
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
