"""Real media files the tests write from the bundled photos: HEIC and AVIF with EXIF,
JPEG/TIFF with EXIF capture time, camera and GPS, an H.264 MP4 that shows photos one after
another, and a DNG (camera RAW) mosaicked from a photo. Each writer uses the real encoder
(libheif/x265, libavif, FFmpeg/x264, pidng)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image, TiffImagePlugin

# EXIF tags (TIFF/EXIF 2.32 numbers).
MAKE, MODEL, ORIENTATION, EXIF_IFD, GPS_IFD = 0x010F, 0x0110, 0x0112, 0x8769, 0x8825
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, LENS_MODEL = 0x9003, 0x9011, 0xA434


def exif_block(*, taken: str | None = None, offset: str | None = None, make: str | None = None,
               model: str | None = None, lens: str | None = None, orientation: int | None = None,
               gps: tuple[float, float] | None = None) -> Image.Exif:
    """An EXIF block as a camera writes it: `taken` "YYYY:MM:DD HH:MM:SS", `gps` (lat, lon) in
    signed decimal degrees (stored as degrees/minutes/seconds with N/S/E/W references)."""
    exif = Image.Exif()
    if make:
        exif[MAKE] = make
    if model:
        exif[MODEL] = model
    if orientation:
        exif[ORIENTATION] = orientation
    ifd = exif.get_ifd(EXIF_IFD)
    if taken:
        ifd[DATETIME_ORIGINAL] = taken
    if offset:
        ifd[OFFSET_TIME_ORIGINAL] = offset
    if lens:
        ifd[LENS_MODEL] = lens
    if gps:
        g = exif.get_ifd(GPS_IFD)
        lat, lon = gps
        g[1], g[2] = ("N" if lat >= 0 else "S"), _dms(abs(lat))
        g[3], g[4] = ("E" if lon >= 0 else "W"), _dms(abs(lon))
    return exif


def _dms(value: float) -> tuple:
    d = int(value)
    m = int((value - d) * 60)
    s = round((value - d - m / 60) * 3600, 4)
    return (TiffImagePlugin.IFDRational(d, 1), TiffImagePlugin.IFDRational(m, 1),
            TiffImagePlugin.IFDRational(int(s * 10000), 10000))


def write_jpeg(path: Path, im: Image.Image, exif: Image.Exif | None = None) -> Path:
    im.save(path, "JPEG", quality=90, **({"exif": exif.tobytes()} if exif is not None else {}))
    return path


def write_heic(path: Path, im: Image.Image, exif: Image.Exif | None = None) -> Path:
    import pillow_heif

    heif = pillow_heif.from_pillow(im)
    heif.save(path, quality=85, **({"exif": exif.tobytes()} if exif is not None else {}))
    return path


def heic_bytes(im: Image.Image) -> bytes:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, format="HEIF", quality=85)
    return buf.getvalue()


def write_avif(path: Path, im: Image.Image, exif: Image.Exif | None = None) -> Path:
    im.save(path, "AVIF", quality=80, **({"exif": exif.tobytes()} if exif is not None else {}))
    return path


def write_mp4(path: Path, photos: list[Image.Image], seconds_each: float = 3.0, fps: int = 10,
              size: tuple[int, int] = (320, 240), creation_time: str | None = None, gop: int | None = None) -> Path:
    """An H.264 MP4 showing each photo for `seconds_each` seconds, in order (`gop`: frames
    between keyframes; x264's default is 250)."""
    import av

    with av.open(str(path), "w") as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", **({"g": str(gop)} if gop else {})}
        for photo in photos:
            frame = av.VideoFrame.from_image(photo.convert("RGB").resize(size, Image.Resampling.BILINEAR))
            for _ in range(round(seconds_each * fps)):
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_dng(path: Path, im: Image.Image, make: str = "Lookalike", model: str = "Test DNG",
              preview: Image.Image | None = None, orientation: int = 1) -> Path:
    """A DNG holding an RGGB Bayer mosaic of `im` (10-bit), as a camera's sensor would record
    it; LibRaw demosaics it. `preview`: a JPEG the camera embeds next to the sensor data (in a
    second IFD, as cameras store theirs); `orientation`: the EXIF orientation the camera wrote."""
    from pidng.core import RAW2DNG, DNGTags, Tag
    from pidng.defs import CalibrationIlluminant, CFAPattern, DNGVersion, PhotometricInterpretation

    rgb = np.asarray(im.convert("RGB"), np.uint16) * 4
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    rgb = rgb[:h, :w]
    bayer = np.zeros((h, w), np.uint16)
    bayer[0::2, 0::2] = rgb[0::2, 0::2, 0]
    bayer[0::2, 1::2] = rgb[0::2, 1::2, 1]
    bayer[1::2, 0::2] = rgb[1::2, 0::2, 1]
    bayer[1::2, 1::2] = rgb[1::2, 1::2, 2]
    t = DNGTags()
    for tag, value in ((Tag.ImageWidth, w), (Tag.ImageLength, h), (Tag.TileWidth, w), (Tag.TileLength, h),
                       (Tag.Orientation, orientation), (Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array),
                       (Tag.SamplesPerPixel, 1), (Tag.BitsPerSample, 16), (Tag.CFARepeatPatternDim, [2, 2]),
                       (Tag.CFAPattern, CFAPattern.RGGB), (Tag.BlackLevel, 0), (Tag.WhiteLevel, 1023),
                       (Tag.ColorMatrix1, [[1, 1], [0, 1], [0, 1], [0, 1], [1, 1], [0, 1], [0, 1], [0, 1], [1, 1]]),
                       (Tag.CalibrationIlluminant1, CalibrationIlluminant.D65), (Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]]),
                       (Tag.BaselineExposure, [[0, 100]]), (Tag.Make, make), (Tag.Model, model),
                       (Tag.DNGVersion, DNGVersion.V1_4), (Tag.DNGBackwardVersion, DNGVersion.V1_2)):
        t.set(tag, value)
    writer = RAW2DNG()
    writer.options(t, path="", compress=False)
    stem = str(path.with_suffix(""))
    writer.convert(bayer, filename=stem)  # pidng appends ".dng"
    written = Path(stem + ".dng")
    if written != path:
        written.rename(path)
    if preview is not None:
        _add_jpeg_ifd(path, encoded(preview.convert("RGB"), "JPEG", quality=90), preview.size)
    return path


def _add_jpeg_ifd(path: Path, jpeg: bytes, size: tuple[int, int]) -> None:
    """Chain a reduced-resolution IFD (NewSubfileType 1) holding a baseline JPEG after IFD0 of
    a little-endian TIFF/DNG: the layout LibRaw reads camera previews from."""
    buf = bytearray(path.read_bytes())
    assert buf[:4] == b"II*\0"
    ifd0 = struct.unpack_from("<I", buf, 4)[0]
    next_pointer = ifd0 + 2 + 12 * struct.unpack_from("<H", buf, ifd0)[0]
    buf += b"\0" * (len(buf) % 2)
    jpeg_at = len(buf)
    buf += jpeg + b"\0" * (len(jpeg) % 2)
    bps_at = len(buf)
    buf += struct.pack("<HHH", 8, 8, 8)
    w, h = size
    short, long_ = 3, 4  # TIFF field types
    entries = [(254, long_, 1, 1), (256, long_, 1, w), (257, long_, 1, h), (258, short, 3, bps_at), (259, short, 1, 7),
               (262, short, 1, 6), (273, long_, 1, jpeg_at), (277, short, 1, 3), (278, long_, 1, h),
               (279, long_, 1, len(jpeg))]
    ifd1 = len(buf)
    buf += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        buf += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == short and count == 1 else \
            struct.pack("<HHII", tag, kind, count, value)
    buf += struct.pack("<I", 0)
    struct.pack_into("<I", buf, next_pointer, ifd1)
    path.write_bytes(bytes(buf))


def encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()
