"""The public Veza backend's rate limit (B11), for the deployed twin: 100 requests a minute per client
address, in memory, above it 429 {"success": false, "error": "Too many requests"} without Retry-After,
the loopback not exempt (the suite's address stands for a CI runner's). One count for the whole
backend, however many instances the sandbox runs: as strict as a single Veza process.

On the sandbox's time scale: the same count over a window TIME_SCALE times shorter, because the
sandbox profile paces TIME_SCALE times faster than production's default (sampling.max_rps 50 in
sandbox-deployed.toml against 0.4): the suite's share of the limit is production's.
"""
from __future__ import annotations

from collections import deque

B11_LIMIT, B11_WINDOW_S = 100, 60.0
TIME_SCALE = 125.0
TOO_MANY = {"success": False, "error": "Too many requests"}


class SlidingLimit:
    """At most `limit` admitted requests per client in any `window_s` (a sliding log: no window edge
    lets a burst of twice the limit through)."""

    def __init__(self, limit: int = B11_LIMIT, window_s: float = B11_WINDOW_S / TIME_SCALE):
        self.limit, self.window_s = limit, window_s
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, client: str, now: float) -> bool:
        seen = self._admitted.setdefault(client, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True


def client_address(headers: dict[bytes, bytes], peer: tuple[str, int] | None) -> str:
    """Gin's ClientIP: the first X-Forwarded-For address, else the connection's."""
    forwarded = headers.get(b"x-forwarded-for", b"").decode().split(",")[0].strip()
    return forwarded or (peer[0] if peer else "unknown")
