"""Non-model CPU per image when indexing multi-megapixel JPEGs, stage by stage, against the
model's CPU per image, in the same run: content hash (SHA-256 vs BLAKE3 vs xxh3-128), JPEG
decode at reduced DCT scale (Pillow draft mode vs simplejpeg / libjpeg-turbo) and the resize
to the model's input. Single thread, CPU time (not wall time), so load from other processes on
a shared machine inflates every figure alike.

    python bench/decode_cost.py --n 40

Photos: the same 2-12 MP JPEGs as bench/index_throughput.py (generated once under --workdir).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from index_throughput import make_photos
from lookalike.imaging import decode_image, read_file
from lookalike.models import get_extractor


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def per_image_ms(fn, items: list, repeat: int = 3) -> float:
    """Best of `repeat` passes (the least disturbed by other processes), CPU ms per item."""
    best = float("inf")
    for _ in range(repeat):
        c = cpu_s()
        for x in items:
            fn(x)
        best = min(best, (cpu_s() - c) / len(items) * 1000)
    return best


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
    ext = get_extractor(args.model)
    size = ext.input_size

    import importlib.util

    import simplejpeg

    from lookalike import imaging

    def decode_with(fast: bool):
        def run(b: bytes):
            imaging.USE_SIMPLEJPEG = fast
            return decode_image(b, draft_size=size)
        return run

    stages = {
        "read": per_image_ms(read_file, paths),
        "sha256": per_image_ms(lambda b: hashlib.sha256(b).hexdigest(), blobs),
        "pillow_draft_decode": per_image_ms(decode_with(False), blobs),
        "simplejpeg_scaled_decode": per_image_ms(
            lambda b: simplejpeg.decode_jpeg(b, colorspace="RGB", min_height=size, min_width=size), blobs),
        "decode_image_simplejpeg": per_image_ms(decode_with(True), blobs),
    }
    # Faster hashes for comparison only (not project dependencies: `pip install blake3 xxhash`).
    if importlib.util.find_spec("blake3") is not None:
        import blake3

        stages["blake3"] = per_image_ms(lambda b: blake3.blake3(b).hexdigest(), blobs)
    if importlib.util.find_spec("xxhash") is not None:
        import xxhash

        stages["xxh3_128"] = per_image_ms(lambda b: xxhash.xxh3_128_hexdigest(b), blobs)
    decoded = [decode_image(b, draft_size=size) for b in blobs]
    stages["resize_to_input"] = per_image_ms(ext.preprocess, decoded)
    tensors = np.stack([ext.preprocess(im) for im in decoded])
    ext.embed_batch(tensors[:8])
    stages["model"] = per_image_ms(lambda s: ext.embed_batch(tensors[s:s + 8]), list(range(0, len(tensors), 8)), 2) / 8
    before = stages["read"] + stages["sha256"] + stages["pillow_draft_decode"] + stages["resize_to_input"]
    after = stages["read"] + stages["sha256"] + stages["decode_image_simplejpeg"] + stages["resize_to_input"]
    result = {"n": len(paths), "megapixels_mean": mp, "cpu_ms_per_image": stages,
              "non_model_before_ms": before, "non_model_after_ms": after,
              "before_over_model": before / stages["model"], "after_over_model": after / stages["model"]}
    print(f"{len(paths)} JPEGs, {mp:.1f} MP mean, {args.model}; CPU ms per image (1 thread, best of 3)")
    for name, ms in stages.items():
        print(f"  {name:<26} {ms:7.2f} ms  ({ms / stages['model']:.2f} x model)")
    print(f"non-model before (read+SHA-256+Pillow draft+resize): {before:.2f} ms = {result['before_over_model']:.2f} x model")
    print(f"non-model after  (read+SHA-256+simplejpeg+resize):   {after:.2f} ms = {result['after_over_model']:.2f} x model")
    out = Path(args.out or Path(args.workdir) / "decode-cost.json")
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
