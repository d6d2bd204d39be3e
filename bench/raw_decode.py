"""Camera RAW: time to get a model-ready picture from a DNG with a full-size embedded JPEG
preview vs. one without (LibRaw's half-size demosaic), same sensor size.

    python bench/raw_decode.py --megapixels 24

The DNGs are written from a bundled real photo here: pidng for the 10-bit RGGB Bayer mosaic
(`pip install pidng`), and a JPEG preview in a second IFD as cameras store theirs (the same
layout as tests/support/media.py, which benches may not import). Prints wall and CPU
seconds, best of --repeat.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

# The DNG writer the tests use (tests/support/media.py): benches may import test support code.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.media import write_dng  # noqa: E402

from lookalike.demo.samples import sample_photos  # noqa: E402
from lookalike.imaging import load_image  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--draft", type=int, default=224, help="short side the model needs")
    args = ap.parse_args()
    w = int((args.megapixels * 1e6 * 1.5) ** 0.5) // 2 * 2
    h = int(w / 1.5) // 2 * 2
    photo = sample_photos()["astronaut"].resize((w, h), Image.Resampling.BILINEAR)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"full-size preview": write_dng(Path(tmp) / "preview.dng", photo, preview=photo),
                 "no preview (demosaic)": write_dng(Path(tmp) / "plain.dng", photo)}
        print(f"{w}x{h} ({w * h / 1e6:.1f} MP) DNG, decoded for a {args.draft}-pixel model input")
        for label, path in files.items():
            wall = cpu = float("inf")
            for _ in range(args.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                im = load_image(path, draft_size=args.draft)
                wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
            print(f"  {label:24} {im.size[0]}x{im.size[1]}  wall {wall:.3f} s  cpu {cpu:.3f} s")


if __name__ == "__main__":
    main()
