"""Hand-made image bytes for decoder limits."""

from __future__ import annotations

import struct
import zlib


def huge_png_header(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR that claims enormous dimensions (no pixel data)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
