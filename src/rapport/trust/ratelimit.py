"""A per-key rate limit: a token bucket per key, kept in the server process."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class OverLimit:
    """Why a key's request is refused, and when to send it again (a ``Retry-After`` header)."""

    reason: str
    headers: dict[str, str]


class RateLimiter:
    """``per_minute`` requests per key and minute, in bursts of up to a minute's worth."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: object) -> float:
        """Spend one request of ``key``: 0 when allowed, else the seconds until the next one is."""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.refill_per_s)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.refill_per_s

    def spend(self, key: object, name: str) -> OverLimit | None:
        """Spend one request of the key ``key`` (called ``name``); why not, when it is over its limit."""
        wait = self.take(key)
        if not wait:
            return None
        reason = f"the key {name!r} is over its limit of {self.capacity:.0f} requests a minute"
        return OverLimit(reason, {"Retry-After": retry_after(wait)})


def retry_after(wait_s: float) -> str:
    """A Retry-After value: whole seconds, at least one."""
    return str(max(1, math.ceil(wait_s)))
