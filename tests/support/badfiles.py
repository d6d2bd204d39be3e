"""A corpus of bad and odd image files, generated from real photos, with what Lookalike must
do with each: index it correctly, or refuse it with a one-line reason containing `reason`.

Two parts, so the HTTP upload tests can reuse the first one:
- `content_cases(photos)`: files defined by their bytes alone (an upload can carry them);
- `build_corpus(root, photos)`: writes those plus the cases that live in the file system
  (odd names, links, permissions, pipes, a directory named x.jpg, ...) under `root`.

Expectations are written by hand from what the file *is*, never taken from a run."""

from __future__ import annotations

import gzip
import io
import os
import socket
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

INDEXED, FAILED, IGNORED = "indexed", "failed", "ignored"


@dataclass(frozen=True)
class BadFile:
    kind: str  # unique short label
    name: str | bytes  # path relative to the corpus root (bytes: a name that is not UTF-8)
    expect: str  # INDEXED, FAILED, or IGNORED (never looked at: hidden, not an image name, ...)
    reason: str = ""  # for FAILED: a phrase the one-line reason must contain (lower case)
    data: bytes | None = None  # the content, for content cases
    size: tuple[int, int] | None = None  # for INDEXED: the (width, height) the record must hold

    def path(self, root: Path) -> str:
        name = os.fsdecode(self.name)
        return os.path.join(os.fsdecode(root), name)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_raw(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    """A PNG assembled by hand, for what Pillow will not write (48-bit RGB, bombs, text bombs)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra
            + png_chunk(b"IDAT", zlib.compress(rows, 9)) + png_chunk(b"IEND", b""))


def _small(photos: dict[str, Image.Image], name: str, side: int = 200) -> Image.Image:
    im = photos[name].convert("RGB")
    im.thumbnail((side, side))
    return im


def content_cases(photos: dict[str, Image.Image]) -> list[BadFile]:
    """Cases defined by their bytes; `photos` is `lookalike.demo.samples.sample_photos()`."""
    coffee, rocket, cat = _small(photos, "coffee"), _small(photos, "rocket"), _small(photos, "chelsea")
    astro, flower = _small(photos, "astronaut"), _small(photos, "flower")
    jpeg = encode(coffee, "JPEG", quality=90)
    png = encode(rocket, "PNG")
    webp = encode(cat, "WEBP", quality=80)
    gif = encode(astro, "GIF")
    w, h = rocket.size
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display": the record must hold the rotated size
    grey16 = Image.fromarray(np.asarray(cat.convert("L"), dtype=np.uint16) * 257)
    arr = np.asarray(cat, dtype=np.uint16) * 257  # 16 bits per channel
    rows48 = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(arr.shape[0]))
    frames = [coffee, rocket.resize(coffee.size), cat.resize(coffee.size)]
    anim_gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    anim_webp = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    multipage = encode(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    pal = flower.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal_t = encode(pal, "PNG", transparency=0)
    rgba = cat.convert("RGBA")
    rgba.putalpha(128)
    bomb_rows = b"\0" * ((16_000 // 8 + 1) * 16_000)  # 16000x16000 1-bit: 256 Mpx from ~30 KB
    text_bomb = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 20_000_000, 9))
    bad_crc = bytearray(png)
    bad_crc[16 + 3] ^= 0xFF  # a byte of IHDR's width: the chunk checksum no longer matches
    bad_exif_jpeg = jpeg[:2] + b"\xff\xe1\x00\x20Exif\0\0MM\0\x2a\0\0\0\x08\xff\xff garbage garbage" + jpeg[2:]
    sof_huge = _jpeg_with_size(jpeg, 65_000, 65_000)
    zero_w = png_raw(0, 10, 8, 0, b"")
    return [
        BadFile("plain JPEG", "good/coffee.jpg", INDEXED, data=jpeg, size=coffee.size),
        BadFile("plain PNG", "good/rocket.png", INDEXED, data=png, size=rocket.size),
        BadFile("zero-byte file", "bad/empty.jpg", FAILED, "empty file", data=b""),
        BadFile("one-byte file", "bad/one-byte.jpg", FAILED, "not an image", data=b"\xff"),
        BadFile("truncated JPEG (half)", "bad/truncated.jpg", FAILED, "truncated", data=jpeg[: len(jpeg) // 2]),
        BadFile("JPEG header only", "bad/header-only.jpg", FAILED, "truncated", data=jpeg[:300]),
        BadFile("truncated PNG", "bad/truncated.png", FAILED, "truncated", data=png[: len(png) // 2]),
        BadFile("truncated WebP", "bad/truncated.webp", FAILED, "truncated", data=webp[: len(webp) // 2]),
        BadFile("truncated GIF", "bad/truncated.gif", FAILED, "truncated", data=gif[: len(gif) // 3]),
        BadFile("PNG with a bad header checksum", "bad/bad-crc.png", FAILED, "corrupt png", data=bytes(bad_crc)),
        BadFile("text renamed .jpg", "bad/notes.jpg", FAILED, "looks like text", data=b"shopping list:\n- milk\n" * 20),
        BadFile("HTML renamed .jpg", "bad/page.jpg", FAILED, "looks like html",
                data=b"<!DOCTYPE html>\n<html><body>hello</body></html>\n"),
        BadFile("PDF renamed .jpg", "bad/doc.jpg", FAILED, "looks like a pdf",
                data=b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        BadFile("SVG renamed .png", "bad/vector.png", FAILED, "svg",
                data=b"<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\"/>\n"),
        BadFile("random bytes", "bad/noise.jpg", FAILED, "not an image", data=np.random.default_rng(0).bytes(4096)),
        BadFile("gzip renamed .png", "bad/archive.png", FAILED, "not an image", data=gzip.compress(png)),
        BadFile("ZIP renamed .jpg", "bad/archive.jpg", FAILED, "not an image", data=_zip_bytes()),
        BadFile("PNG header claiming 80000x80000", "bad/bomb-header.png", FAILED, "too large",
                data=png_raw(80_000, 80_000, 8, 2, b"\0" * 64)),
        BadFile("decompression bomb (256 Mpx PNG, 30 KB)", "bad/bomb.png", FAILED, "too large",
                data=png_raw(16_000, 16_000, 1, 0, bomb_rows)),
        BadFile("JPEG claiming 65000x65000", "bad/huge-sof.jpg", FAILED, "too large", data=sof_huge),
        BadFile("PNG with zero width", "bad/zero-width.png", FAILED, "corrupt png", data=zero_w),
        BadFile("PNG text-chunk bomb (20 MB zTXt)", "bad/text-bomb.png", FAILED, "too large",
                data=png_raw(cat.width, cat.height, 16, 2, rows48, extra=text_bomb)),
        BadFile("1x1 image", "odd/tiny.png", INDEXED, data=encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), size=(1, 1)),
        BadFile("30000x10 image", "odd/wide.png", INDEXED, data=encode(coffee.resize((30_000, 10)), "PNG"), size=(30_000, 10)),
        BadFile("10x30000 image", "odd/tall.png", INDEXED, data=encode(coffee.resize((10, 30_000)), "PNG"), size=(10, 30_000)),
        BadFile("CMYK JPEG", "odd/cmyk.jpg", INDEXED, data=encode(flower.convert("CMYK"), "JPEG"), size=flower.size),
        BadFile("16-bit greyscale PNG", "odd/grey16.png", INDEXED, data=encode(grey16, "PNG"), size=cat.size),
        BadFile("16-bit RGB PNG", "odd/rgb48.png", INDEXED, data=png_raw(cat.width, cat.height, 16, 2, rows48), size=cat.size),
        BadFile("palette PNG with transparency", "odd/palette.png", INDEXED, data=pal_t, size=flower.size),
        BadFile("half-transparent RGBA PNG", "odd/rgba.png", INDEXED, data=encode(rgba, "PNG"), size=cat.size),
        BadFile("greyscale+alpha PNG", "odd/la.png", INDEXED, data=encode(cat.convert("LA"), "PNG"), size=cat.size),
        BadFile("interlaced PNG", "odd/interlaced.png", INDEXED, data=_interlaced_png(rocket), size=rocket.size),
        BadFile("animated GIF", "odd/animated.gif", INDEXED, data=anim_gif, size=coffee.size),
        BadFile("animated WebP", "odd/animated.webp", INDEXED, data=anim_webp, size=coffee.size),
        BadFile("lossless WebP", "odd/lossless.webp", INDEXED, data=encode(cat, "WEBP", lossless=True), size=cat.size),
        BadFile("multi-page TIFF", "odd/pages.tif", INDEXED, data=multipage, size=coffee.size),
        BadFile("32-bit float TIFF", "odd/float.tif", INDEXED, data=encode(cat.convert("F"), "TIFF"), size=cat.size),
        BadFile("1-bit BMP", "odd/mono.bmp", INDEXED, data=encode(cat.convert("1"), "BMP"), size=cat.size),
        BadFile("EXIF-rotated JPEG", "odd/rotated.jpg", INDEXED, data=encode(rocket, "JPEG", exif=exif.tobytes()), size=(h, w)),
        BadFile("JPEG with a corrupt EXIF block", "odd/bad-exif.jpg", INDEXED, data=bad_exif_jpeg, size=coffee.size),
        BadFile("progressive JPEG", "odd/progressive.jpg", INDEXED, data=encode(astro, "JPEG", progressive=True), size=astro.size),
        BadFile("greyscale JPEG", "odd/grey.jpg", INDEXED, data=encode(astro.convert("L"), "JPEG"), size=astro.size),
        BadFile("JPEG with trailing garbage", "odd/trailing.jpg", INDEXED, data=jpeg + b"\0garbage" * 100, size=coffee.size),
        BadFile("PNG named .jpg", "odd/png-inside.jpg", INDEXED, data=encode(flower, "PNG"), size=flower.size),
        BadFile("JPEG named .png", "odd/jpeg-inside.png", INDEXED, data=encode(flower, "JPEG"), size=flower.size),
        # Only JPEG, PNG, WebP, GIF, BMP and TIFF are ever decoded (imaging.ALLOWED_FORMATS).
        BadFile("ICO named .png", "bad/icon.png", FAILED, "not an image", data=encode(cat.resize((64, 64)), "ICO", sizes=[(64, 64)])),
        BadFile("PPM named .jpg", "bad/portable.jpg", FAILED, "not an image", data=encode(cat, "PPM")),
        BadFile("EPS named .jpg", "bad/postscript.jpg", FAILED, "postscript",
                data=b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\nshowpage\n"),
        BadFile("upper-case extension", "odd/SHOUT.JPG", INDEXED, data=encode(astro, "JPEG", quality=70), size=astro.size),
    ]


def build_corpus(root: Path, photos: dict[str, Image.Image]) -> list[BadFile]:
    """Write every case under `root` (which must not exist yet); returns them all. The
    "deleted while indexing" case needs the caller to delete `deleted_path(root)` after the
    scan and before reading (e.g. from `Library.add`'s first progress callback)."""
    root.mkdir(parents=True)
    cases = content_cases(photos)
    for c in cases:
        _write(root, c.name, c.data or b"")
    good = encode(_small(photos, "moon"), "JPEG")
    moon = _small(photos, "moon").size
    rb = os.fsencode(root)
    fs = [
        BadFile("file name that is not UTF-8", b"names/caf\xe9-latin1.jpg", INDEXED, size=moon),
        BadFile("255-byte file name", "names/" + "x" * 251 + ".jpg", INDEXED, size=moon),
        BadFile("non-ASCII file name", "names/фото №1 ☕.jpg", INDEXED, size=moon),
        BadFile("newline in file name", "names/two\nlines.jpg", INDEXED, size=moon),
        BadFile("name starting with a dash", "names/-rf .jpg", INDEXED, size=moon),
        BadFile("copy of another image", "links/copy.jpg", INDEXED, size=moon),
        BadFile("hard link", "links/hardlink.jpg", INDEXED, size=moon),
        BadFile("symbolic link to an image", "links/symlink.jpg", INDEXED, size=moon),
        BadFile("file modified in 2100", "times/future.jpg", INDEXED, size=moon),
        BadFile("file modified in 1960", "times/past.jpg", INDEXED, size=moon),
        BadFile("symbolic link loop", "links/loop.jpg", FAILED, "symbolic link loop"),
        BadFile("broken symbolic link", "links/dangling.jpg", FAILED, "broken symbolic link"),
        BadFile("unreadable file (mode 000)", "perm/locked.jpg", FAILED, "permission denied"),
        BadFile("unreadable folder (mode 000)", "perm/locked-dir", FAILED, "permission denied"),
        BadFile("named pipe called .jpg", "special/pipe.jpg", FAILED, "not a regular file"),
        BadFile("socket called .jpg", "special/socket.jpg", FAILED, "not a regular file"),
        BadFile("link to /dev/zero called .jpg", "special/zero.jpg", FAILED, "not a regular file"),
        BadFile("directory named x.jpg (its images are indexed)", "dir.jpg/inside.jpg", INDEXED, size=moon),
        BadFile("folder symlink loop", "loops/self", IGNORED),
        BadFile("hidden file", "names/.hidden.jpg", IGNORED),
        BadFile("file in a hidden folder", ".thumbnails/thumb.jpg", IGNORED),
        BadFile("not an image extension", "names/readme.txt", IGNORED),
        BadFile("file deleted while indexing", "race/deleted.jpg", FAILED, "file not found"),
    ]
    for c in fs:
        _write_fs(root, rb, c, good)
    return cases + fs


def deleted_path(root: Path) -> str:
    return os.path.join(os.fsdecode(root), "race", "deleted.jpg")


def _write(root: Path, name: str | bytes, data: bytes) -> None:
    path = os.path.join(os.fsencode(root), os.fsencode(name))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def _write_fs(root: Path, rb: bytes, c: BadFile, good: bytes) -> None:
    p = os.path.join(rb, os.fsencode(c.name))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    kind = c.kind
    if c.expect == INDEXED and kind not in ("hard link", "symbolic link to an image"):
        _write(root, c.name, good)
        if "2100" in kind:
            os.utime(p, (4_102_444_800, 4_102_444_800))
        elif "1960" in kind:
            os.utime(p, (-315_619_200, -315_619_200))
    elif kind == "hard link":
        os.link(os.path.join(rb, b"links/copy.jpg"), p)
    elif kind == "symbolic link to an image":
        os.symlink("copy.jpg", p)
    elif kind == "symbolic link loop":
        os.symlink("loop.jpg", p)
    elif kind == "broken symbolic link":
        os.symlink("no-such-file.jpg", p)
    elif kind.startswith("unreadable file"):
        _write(root, c.name, good)
        os.chmod(p, 0)
    elif kind.startswith("unreadable folder"):
        os.makedirs(p)
        _write(root, os.path.join(os.fsdecode(c.name), "inside.jpg"), good)
        os.chmod(p, 0)
    elif kind.startswith("named pipe"):
        os.mkfifo(p)
    elif kind.startswith("socket"):
        s = socket.socket(socket.AF_UNIX)
        s.bind(p)
        s.close()
    elif kind.startswith("link to /dev/zero"):
        os.symlink("/dev/zero", p)
    elif kind == "folder symlink loop":
        os.symlink(".", p)
    elif c.expect == IGNORED or kind == "file deleted while indexing":
        _write(root, c.name, good)
    else:
        raise AssertionError(f"no recipe for {kind}")


def _interlaced_png(im: Image.Image) -> bytes:
    """Adam7-interlaced PNG (Pillow writes none): encoded with the stdlib by hand."""
    w, h = im.size
    px = im.convert("RGB").tobytes()
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        for y in range(y0, h, dy):
            cols = range(x0, w, dx)
            if not cols:
                continue
            raw += b"\0" + b"".join(px[(y * w + x) * 3:(y * w + x) * 3 + 3] for x in cols)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(bytes(raw)))
            + png_chunk(b"IEND", b""))


def _jpeg_with_size(jpeg: bytes, width: int, height: int) -> bytes:
    """Rewrite a baseline JPEG's SOF0 frame size (the data no longer fits: header-level bomb)."""
    i = jpeg.index(b"\xff\xc0")
    return jpeg[: i + 5] + struct.pack(">HH", height, width) + jpeg[i + 9:]


def _zip_bytes() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("photo.txt", "not a photo")
    return buf.getvalue()
