"""Per-key request rate limits: a token bucket per key, held in the gateway's memory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Allows ``per_minute`` requests a minute per key, in bursts of up to ``per_minute``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key_id: str, per_minute: int) -> float | None:
        """Take one request from the key's allowance: None if allowed, else seconds until it would be."""
        now = self._clock()
        rate = per_minute / 60.0
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = _Bucket(tokens=float(per_minute), updated=now)
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate
