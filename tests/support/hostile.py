"""Servers that attack a URL-fetching client, started by the tests on 127.0.0.x: a slow-drip
server, a redirector, an "internal" service, and a real image; each in a daemon thread,
stopped by `close()`."""

from __future__ import annotations

import http.server
import io
import socketserver
import struct
import threading
import time
import zlib

from PIL import Image

SECRET = b"internal-admin-secret-7f3a"


def jpeg_bytes(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def big_png(width: int, height: int) -> bytes:
    """A real, valid 8-bit RGB PNG of width x height black pixels: a few hundred KB that
    decode to width*height*3 bytes (built row by row, never holding the raw pixels)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class HostileServer:
    """Paths: /image.jpg (the image given), /secret (an internal page), /drip (headers, then one
    byte every `drip_s` seconds, forever), /drip-headers (the status line itself dripped),
    /redirect?to=URL (302 to URL), /big (a body over any small limit)."""

    def __init__(self, host: str = "127.0.0.1", image: bytes = b"", drip_s: float = 0.5) -> None:
        owner = self
        self.requests = 0
        self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                path, _, query = self.path.partition("?")
                if path == "/image.jpg":
                    self._send(200, image, "image/jpeg")
                elif path == "/secret":
                    self._send(200, b"<!DOCTYPE html><html>" + SECRET + b"</html>", "text/html")
                elif path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", query.removeprefix("to="))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif path == "/big":
                    self._send(200, b"\xff\xd8" + b"\0" * 3_000_000, "image/jpeg")
                elif path in ("/drip", "/drip-headers"):
                    try:
                        if path == "/drip":
                            self.send_response(200)
                            self.send_header("Content-Type", "image/jpeg")
                            self.end_headers()
                        while not owner.stop.is_set():
                            self.wfile.write(b"H" if path == "/drip-headers" else b"\0")
                            self.wfile.flush()
                            time.sleep(drip_s)
                    except OSError:
                        pass
                else:
                    self._send(404, b"not here", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.base = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
