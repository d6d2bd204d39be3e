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
import io
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.demo.samples import sample_photos
from lookalike.imaging import load_image


def write_dng(path: Path, im: Image.Image, preview: Image.Image | None = None) -> Path:
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    rgb = np.asarray(im.convert("RGB"), np.uint16) * 4
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    bayer = np.zeros((h, w), np.uint16)
    for dy, dx, c in ((0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)):
        bayer[dy::2, dx::2] = rgb[dy:h:2, dx:w:2, c]
    t = DNGTags()
    for tag, value in ((Tag.ImageWidth, w), (Tag.ImageLength, h), (Tag.TileWidth, w), (Tag.TileLength, h),
                       (Tag.Orientation, 1), (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
                       (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]),
                       (Tag.CFAPattern, CFAPattern.RGGB), (Tag.BlackLevel, 0), (Tag.WhiteLevel, 1023),
                       (Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
                       (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
                       (Tag.Make, "Lookalike"), (Tag.Model, "Bench DNG"),
                       (Tag.DNGVersion, DNGVersion.V1_4), (Tag.DNGBackwardVersion, DNGVersion.V1_2)):
        t.set(tag, value)
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    writer.convert(bayer, filename=str(path.with_suffix("")))
    if preview is not None:
        buf = io.BytesIO()
        preview.convert("RGB").save(buf, "JPEG", quality=90)
        _add_jpeg_ifd(path, buf.getvalue(), preview.size)
    return path


def _add_jpeg_ifd(path: Path, jpeg: bytes, size: tuple[int, int]) -> None:
    """Chain a preview IFD (NewSubfileType 1, baseline JPEG) after IFD0 of a little-endian DNG."""
    buf = bytearray(path.read_bytes())
    ifd0 = struct.unpack_from("<I", buf, 4)[0]
    next_pointer = ifd0 + 2 + 12 * struct.unpack_from("<H", buf, ifd0)[0]
    buf += b"\0" * (len(buf) % 2)
    jpeg_at = len(buf)
    buf += jpeg + b"\0" * (len(jpeg) % 2)
    bps_at = len(buf)
    buf += struct.pack("<HHH", 8, 8, 8)
    w, h = size
    entries = [(254, 4, 1, 1), (256, 4, 1, w), (257, 4, 1, h), (258, 3, 3, bps_at), (259, 3, 1, 7), (262, 3, 1, 6),
               (273, 4, 1, jpeg_at), (277, 3, 1, 3), (278, 4, 1, h), (279, 4, 1, len(jpeg))]
    ifd1 = len(buf)
    buf += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        buf += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 and count == 1 else \
            struct.pack("<HHII", tag, kind, count, value)
    buf += struct.pack("<I", 0)
    struct.pack_into("<I", buf, next_pointer, ifd1)
    path.write_bytes(bytes(buf))


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
