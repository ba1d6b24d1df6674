"""Per-key rate limits: a token bucket (Turner 1986) in process memory, or in PostgreSQL so that one
key's limit holds across every replica."""

from __future__ import annotations

import threading
import time


class MemoryRateLimiter:
    """Token bucket per key (Turner 1986): ``burst`` tokens, refilled at ``rate`` tokens per second.

    ``take`` returns 0 when a request may go ahead, else the seconds until a token is available."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class PgRateLimiter:
    """The same token bucket kept in PostgreSQL (``rate_buckets``), so a key's limit holds across all
    replicas. One row lock per request; elapsed time is measured by the database clock, so replicas'
    clocks need not agree."""

    def __init__(self, pool, rate: float, burst: int) -> None:
        self.pool, self.rate, self.burst = pool, rate, burst

    def take(self, key: str) -> float:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO rate_buckets VALUES (%s, %s, clock_timestamp()) ON CONFLICT DO NOTHING",
                (key, float(self.burst)),
            )
            tokens, elapsed = conn.execute(
                "SELECT tokens, extract(epoch FROM clock_timestamp() - updated_at) FROM rate_buckets WHERE key = %s FOR UPDATE",
                (key,),
            ).fetchone()
            tokens = min(float(self.burst), tokens + float(elapsed) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            conn.execute(
                "UPDATE rate_buckets SET tokens = %s, updated_at = clock_timestamp() WHERE key = %s",
                (tokens - 1 if wait == 0 else tokens, key),
            )
        return wait
