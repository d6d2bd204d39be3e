"""Per-client token buckets for the requests that cost the server most (uploads, URL
searches): each client may burst up to `burst` requests, refilled at `per_minute`."""

from __future__ import annotations

import threading
import time


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(f"too many {what} from this client; retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class TokenBuckets:
    MAX_CLIENTS = 10_000  # forget idle clients beyond this many, so the table cannot grow without end

    def __init__(self, what: str, per_minute: float, burst: int) -> None:
        self.what = what
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        """Spend one token of `client` or raise `RateLimited` with the seconds until the next."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                raise RateLimited(self.what, max(1.0, (1.0 - tokens) / self.rate))
            if len(self._buckets) >= self.MAX_CLIENTS and client not in self._buckets:
                self._buckets.pop(next(iter(self._buckets)))
            self._buckets[client] = (tokens - 1.0, now)
