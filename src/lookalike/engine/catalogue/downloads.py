"""Fetching product images by URL: a total deadline, retries with backoff, a size cap, and a
content-addressed cache so a re-import downloads nothing it already has.

The cache lives in the library (`catalogue-cache/`): `blobs/ab/<sha256>` holds each distinct
image once; `urls.sqlite` maps a URL to the sha256 (and ETag/Last-Modified) it last served.
A URL already in the cache is not requested again unless `revalidate` is set, in which case a
conditional GET is sent and a 304 answer reuses the cached bytes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...errors import ImageLoadError

CACHE_DIR = "catalogue-cache"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class FetchPolicy:
    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 20.0  # per request
    deadline_s: float = 600.0  # for every download of one import together
    retries: int = 3  # extra attempts after a connection error, a timeout or a 5xx/429
    backoff_s: float = 0.5  # first wait; doubles each retry
    revalidate: bool = False


@dataclass
class Fetched:
    sha256: str
    data: bytes
    downloaded: bool  # False: served from the cache without a full download


class DownloadCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        (self.directory / "blobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.directory / "urls.sqlite", check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS urls (url TEXT PRIMARY KEY, sha256 TEXT NOT NULL, "
                         "etag TEXT, last_modified TEXT, fetched REAL NOT NULL)")
        self._db.commit()

    def blob_path(self, sha256: str) -> Path:
        return self.blob_path_in(self.directory, sha256)

    @staticmethod
    def blob_path_in(directory: Path, sha256: str) -> Path:
        """Where a cache in `directory` keeps these bytes (read without opening the cache)."""
        return Path(directory) / "blobs" / sha256[:2] / sha256

    def lookup(self, url: str) -> tuple[str, str | None, str | None] | None:
        """(sha256, etag, last_modified) of a URL whose bytes are in the cache."""
        with self._lock:
            row = self._db.execute("SELECT sha256, etag, last_modified FROM urls WHERE url = ?", (url,)).fetchone()
        if row is None or not self.blob_path(row[0]).exists():
            return None
        return row

    def read(self, sha256: str) -> bytes:
        return self.blob_path(sha256).read_bytes()

    def put(self, url: str, data: bytes, etag: str | None = None, last_modified: str | None = None) -> str:
        sha = self.store_blob(data)
        self.remember(url, sha, etag, last_modified)
        return sha

    def store_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        blob = self.blob_path(sha)
        if not blob.exists():
            blob.parent.mkdir(exist_ok=True)
            tmp = blob.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, blob)  # atomic: a crash never leaves a truncated blob under its hash
        return sha

    def remember(self, url: str, sha256: str, etag: str | None, last_modified: str | None) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO urls VALUES (?, ?, ?, ?, ?)", (url, sha256, etag, last_modified, time.time()))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Downloader:
    """Thread-safe; one per import so the deadline covers that import's downloads.
    `get`: another way to download (url -> bytes, raising LookalikeError), e.g. the server's
    fetcher that refuses private addresses; the cache still applies, retries and
    conditional GETs are then the fetcher's business."""

    def __init__(self, cache: DownloadCache, policy: FetchPolicy | None = None,
                 get: Callable[[str], bytes] | None = None) -> None:
        self.cache = cache
        self.policy = policy or FetchPolicy()
        self.deadline_at = time.monotonic() + self.policy.deadline_s
        self.get = get

    def fetch(self, url: str) -> Fetched:
        known = self.cache.lookup(url)
        if known is not None and not self.policy.revalidate:
            return Fetched(known[0], self.cache.read(known[0]), downloaded=False)
        if self.get is not None:
            data = self.get(url)
            return Fetched(self.cache.put(url, data), data, downloaded=True)
        headers = {"User-Agent": "lookalike-catalogue"}
        if known is not None:
            if known[1]:
                headers["If-None-Match"] = known[1]
            if known[2]:
                headers["If-Modified-Since"] = known[2]
        attempt = 0
        while True:
            remaining = self.deadline_at - time.monotonic()
            if remaining <= 0:
                raise ImageLoadError(url, f"download deadline of {self.policy.deadline_s:g} s passed")
            try:
                return self._get(url, headers, min(self.policy.timeout_s, remaining), known)
            except _Retryable as e:
                attempt += 1
                wait = self.policy.backoff_s * 2 ** (attempt - 1)
                if attempt > self.policy.retries or time.monotonic() + wait >= self.deadline_at:
                    raise ImageLoadError(url, f"{e.reason} (after {attempt} attempts)") from None
                time.sleep(wait)

    def _get(self, url: str, headers: dict[str, str], timeout: float, known) -> Fetched:
        request = urllib.request.Request(url, headers=headers)
        limit = self.policy.max_bytes
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                declared = resp.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise ImageLoadError(url, f"image larger than the {_mb(limit)} cap ({_mb(int(declared))})")
                data = resp.read(limit + 1)
                etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        except urllib.error.HTTPError as e:
            if e.code == 304 and known is not None:
                return Fetched(known[0], self.cache.read(known[0]), downloaded=False)
            if e.code in RETRY_STATUSES:
                raise _Retryable(f"HTTP {e.code}") from None
            raise ImageLoadError(url, f"HTTP {e.code} {e.reason}".strip()) from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise _Retryable("timed out") from None
            if isinstance(reason, (ConnectionError, OSError)):
                raise _Retryable(f"connection failed ({getattr(reason, 'strerror', None) or reason})") from None
            raise ImageLoadError(url, f"broken URL ({reason})") from None
        except (TimeoutError, ConnectionError) as e:
            raise _Retryable("timed out" if isinstance(e, TimeoutError) else f"connection failed ({e})") from None
        except ValueError as e:  # malformed URL
            raise ImageLoadError(url, f"broken URL ({e})") from None
        except OSError as e:
            raise _Retryable(f"connection failed ({e.strerror or e})") from None
        if len(data) > limit:
            raise ImageLoadError(url, f"image larger than the {_mb(limit)} cap")
        if not data:
            raise ImageLoadError(url, "empty response")
        sha = self.cache.put(url, data, etag, modified)
        return Fetched(sha, data, downloaded=True)


class _Retryable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n < 10 * 1024 * 1024 else f"{n // (1024 * 1024)} MB"
