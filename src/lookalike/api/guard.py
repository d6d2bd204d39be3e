"""ASGI middleware in front of every route: the Host header must name this server (DNS
rebinding), writes must not come from another site's page (Origin / Sec-Fetch-Site), a
request-body size limit enforced while the body streams in (not after it is buffered),
HEAD answered like GET without a body, and security headers on every response."""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.fetch import format_bytes

# The page loads nothing from elsewhere; the Swagger UI / ReDoc pages use inline scripts, so
# they get no policy (they are documentation, not the app).
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
DOCS_CSP = "frame-ancestors 'none'"
NO_CSP = ("/docs", "/redoc")
# The catalogue widget (api/widget.py): with shop origins configured (--cors-origin), its page
# may be framed by those origins, and its script, stylesheet and item images may be loaded by
# their pages; everything else stays same-origin and unframeable.
WIDGET_PAGE = "/widget/"
WIDGET_ASSET = re.compile(r"^(/widget\.js|/static/widget\.css|/api/items/[^/]+/image)$")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
UNSAFE_METHODS = (b"POST", b"PUT", b"PATCH", b"DELETE")


class PayloadTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than the upload limit of {format_bytes(limit)}")


class Guard:
    """`allowed_hosts`: host names (no port) the Host header may carry; None: any (tests with
    in-process clients). `any_ip_host`: also any IP literal (a server bound to every interface:
    an IP address cannot be rebound by DNS)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, allowed_hosts: tuple[str, ...] | None = LOOPBACK_NAMES,
                 any_ip_host: bool = False, embed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.embed_origins = tuple(embed_origins)
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts = None if allowed_hosts is None else {h.lower().strip("[]") for h in allowed_hosts}
        self.any_ip_host = any_ip_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        csp = CSP if not scope["path"].startswith(NO_CSP) else DOCS_CSP
        frame, resource_policy = b"DENY", b"same-origin"
        if self.embed_origins and scope["path"].startswith(WIDGET_PAGE):
            csp, frame = csp.replace("frame-ancestors 'none'", "frame-ancestors " + " ".join(self.embed_origins)), b""
        elif self.embed_origins and WIDGET_ASSET.match(scope["path"]):
            resource_policy = b"cross-origin"
        head = scope["method"] == "HEAD"
        if head:  # answered by the GET route; the body is dropped below
            scope = {**scope, "method": "GET"}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         *([(b"x-frame-options", frame)] if frame else []), (b"content-security-policy", csp.encode()),
                         (b"cross-origin-resource-policy", resource_policy)]
                message["headers"] = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"] + extra
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        host = headers.get(b"host", b"").decode("latin-1")
        if not self.host_allowed(host):
            await _send_json(send_with_headers, 421, f"this server does not answer for host {host[:100]!r} "
                             "(start it with --allowed-host NAME when it is reached through that name)")
            return
        if scope["method"].encode() in UNSAFE_METHODS and not self.same_site(headers, host):
            await _send_json(send_with_headers, 403, "cross-site request refused: writes and searches must come "
                             "from this server's own page or from a client that sends no foreign Origin")
            return

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


    def host_allowed(self, host: str) -> bool:
        if self.allowed_hosts is None:
            return True
        name = _host_name(host)
        if name in self.allowed_hosts:
            return True
        if self.any_ip_host:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    def same_site(self, headers: dict[bytes, bytes], host: str) -> bool:
        """A browser marks a request another site's page makes: Sec-Fetch-Site says so, and
        Origin names the other site. Clients that send neither (curl, scripts) pass."""
        if headers.get(b"sec-fetch-site", b"") == b"cross-site":
            return False
        origin = headers.get(b"origin")
        if origin is None:
            return True
        parts = urlsplit(origin.decode("latin-1"))
        if not parts.netloc:  # "null": a sandboxed frame, a file:// page, a privacy redirect
            return False
        default = {"http": "80", "https": "443"}.get(parts.scheme, "")
        netloc = parts.netloc.lower().removesuffix(f":{default}") if default else parts.netloc.lower()
        if netloc == host.lower().removesuffix(f":{default}"):
            return True
        return self.allowed_hosts is not None and (parts.hostname or "") in self.allowed_hosts - set(LOOPBACK_NAMES)


def _host_name(host: str) -> str:
    """The name part of a Host header: 'a.b:80' -> 'a.b', '[::1]:80' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


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
