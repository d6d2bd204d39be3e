"""ASGI middleware in front of every route: a request-body size limit enforced while the
body streams in (not after it is buffered), and security headers on every response."""

from __future__ import annotations

import ipaddress
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The page loads nothing from elsewhere; the Swagger UI / ReDoc pages use inline scripts, so
# they get no policy (they are documentation, not the app).
CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"
NO_CSP = ("/docs", "/redoc")


class PayloadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the upload limit of {format_bytes(limit)}")


def format_bytes(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n} bytes"


class Guard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        csp = not scope["path"].startswith(NO_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
                if csp:
                    extra.append((b"content-security-policy", CSP.encode()))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        limit = self.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            # Refuse without buffering or parsing any of it; a body of up to 4x the limit is read
            # and discarded first, so the client (still sending) reads the 413 instead of seeing
            # its connection reset. A larger one is answered at once.
            if int(declared) <= 4 * limit:
                await _drain(receive, {"type": "http.request", "more_body": True}, cap=int(declared))
            await _send_json(send_with_headers, 413, PayloadTooLarge(limit).detail)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body without Content-Length
                    await _drain(receive, message, cap=4 * limit)
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send_with_headers)


async def _drain(receive: Receive, message: Message, cap: int) -> None:
    """Read and discard the rest of an oversized body (up to `cap` bytes), so the client has
    finished sending when the 413 arrives instead of seeing its connection reset mid-upload."""
    drained = 0
    while message.get("more_body") and drained < cap:
        message = await receive()
        drained += len(message.get("body", b""))


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
