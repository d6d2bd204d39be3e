"""Downloading a query image from a URL without letting the URL turn the downloader against
its own host: a total deadline and a size cap for the whole download (not per socket read),
and, when a `FetchPolicy` says so, no connection to loopback, private, link-local, multicast,
reserved or otherwise non-public addresses, checked on every redirect. The checked address is
the one connected to (no second DNS lookup, so DNS rebinding cannot swap it)."""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from ..errors import Busy, Forbidden, InvalidQuery, LookalikeError, TooLarge

log = logging.getLogger("lookalike.fetch")

DEFAULT_MAX_BYTES = 20 * 1000 * 1000
DEFAULT_DEADLINE_S = 15.0
MAX_REDIRECTS = 3
PUBLIC_MESSAGE = "could not fetch the URL"  # all a client learns about why; the log has the rest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchFailed(LookalikeError):
    """The download did not succeed (network error, HTTP error, deadline). `detail` is for the
    log; the message shown to clients of a server is generic."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class FetchPolicy:
    public_only: bool = True  # refuse non-public addresses (the server); the CLI fetches anything
    allow: tuple[Network, ...] = ()  # networks allowed even though not public (--url-allow CIDR)
    max_bytes: int = DEFAULT_MAX_BYTES
    deadline_s: float = DEFAULT_DEADLINE_S
    generic_errors: bool = True  # hide the reason from the caller (it goes to the log)


CLI_POLICY = FetchPolicy(public_only=False, generic_errors=False, max_bytes=50 * 1000 * 1000, deadline_s=60.0)


def parse_networks(cidrs: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise InvalidQuery(f"--url-allow {cidr!r} is not an address or CIDR network (e.g. 10.0.0.0/8)") from None
    return tuple(out)


def format_bytes(n: int) -> str:
    """Sizes as users set them: decimal MB (a 20 MB limit reads '20 MB', not '19 MB')."""
    return f"{n / 1e6:g} MB" if n >= 1_000_000 else f"{n} bytes"


def address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, policy: FetchPolicy) -> bool:
    if any(ip in net for net in policy.allow):
        return True
    if not policy.public_only:
        return True
    if ip.version == 6:
        # ::ffff:a.b.c.d, ::a.b.c.d, 6to4 and Teredo embed IPv4 addresses: refuse the forms outright.
        if ip.ipv4_mapped is not None or ip.sixtofour is not None or ip.teredo is not None:
            return False
        if int(ip) >> 32 == 0:  # IPv4-compatible ::a.b.c.d (and ::, ::1)
            return False
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local or ip.is_unspecified)


@dataclass
class Fetcher:
    """Downloads under one policy, at most `concurrency` at a time (a fast `Busy` beyond that),
    so slow servers can tie up only these slots, never the threads that answer searches."""

    policy: FetchPolicy = field(default_factory=FetchPolicy)
    concurrency: int = 4

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.concurrency)

    def fetch(self, url: str) -> bytes:
        if not self._slots.acquire(blocking=False):
            raise Busy("too many URL downloads in progress; try again in a few seconds")
        try:
            return fetch(url, self.policy)
        finally:
            self._slots.release()


def fetch(url: str, policy: FetchPolicy = CLI_POLICY) -> bytes:
    """The body of `url` (http/https), following up to MAX_REDIRECTS redirects, each checked."""
    deadline = time.monotonic() + policy.deadline_s
    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _get_once(current, policy, deadline)
            if location is None:
                if status != 200:
                    raise _failed(policy, url, f"HTTP {status}")
                return body
            current = urljoin(current, location)
        raise _failed(policy, url, f"more than {MAX_REDIRECTS} redirects")
    except LookalikeError:
        raise
    except (OSError, http.client.HTTPException, ssl.SSLError, ValueError) as e:
        detail = f"deadline of {policy.deadline_s:g} s exceeded" if time.monotonic() >= deadline else _one_line(e)
        raise _failed(policy, url, detail) from None


def _failed(policy: FetchPolicy, url: str, detail: str) -> FetchFailed:
    log.warning("URL query %r failed: %s", url[:300], detail)
    return FetchFailed(PUBLIC_MESSAGE if policy.generic_errors else f"{url}: download failed: {detail}", detail)


def _get_once(url: str, policy: FetchPolicy, deadline: float) -> tuple[int, str | None, bytes]:
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidQuery("url must not contain spaces or control characters (percent-encode them)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidQuery("url must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise InvalidQuery("url has no host name")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidQuery("url has an invalid port") from None
    ip = _resolve(host, port, policy, url)
    sock = socket.create_connection((str(ip), port), timeout=max(0.1, deadline - time.monotonic()))
    # The whole exchange must end by the deadline, however slowly the server drips bytes:
    # a timer shuts the socket down, which ends any blocked read at once.
    held = [sock]  # TLS wrapping replaces the socket object; the timer must shut the current one
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), lambda: _shutdown(held[0]))
    timer.daemon = True
    timer.start()
    try:
        if parts.scheme == "https":
            sock = held[0] = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=max(0.1, deadline - time.monotonic()))
        conn.sock = sock  # already connected to the checked address
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"User-Agent": "lookalike", "Accept": "image/*", "Connection": "close"})
        resp = conn.getresponse()
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            return resp.status, resp.getheader("Location"), b""
        if resp.status != 200:
            return resp.status, None, b""
        declared = resp.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise _too_large(policy, url)
        chunks, size = [], 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline")
            sock.settimeout(remaining)
            chunk = resp.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > policy.max_bytes:
                raise _too_large(policy, url)
            chunks.append(chunk)
        if time.monotonic() >= deadline:
            raise TimeoutError("deadline")
        return 200, None, b"".join(chunks)
    finally:
        timer.cancel()
        sock.close()


def _too_large(policy: FetchPolicy, url: str) -> TooLarge:
    log.warning("URL query %r refused: larger than %s", url[:300], format_bytes(policy.max_bytes))
    return TooLarge(f"the URL's image is larger than the {format_bytes(policy.max_bytes)} limit")


def _resolve(host: str, port: int, policy: FetchPolicy, url: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The first address of `host` that the policy allows; every address must be allowed, so a
    name cannot mix a public address with an internal one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise _failed(policy, url, f"cannot resolve host ({_one_line(e)})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    refused = [ip for ip in addresses if not address_allowed(ip, policy)]
    if refused or not addresses:
        log.warning("URL query %r refused: %s resolves to non-public address %s", url[:300], host, refused[:1])
        raise Forbidden(f"{PUBLIC_MESSAGE}: its address is not allowed on this server")
    return addresses[0]


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__
