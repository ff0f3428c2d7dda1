"""The public Veza backend's rate limits, for the deployed twins. Both servers (B11): 100 requests a
minute per client address, in memory, above it 429 {"success": false, "error": "Too many requests"}
without Retry-After. The production server adds its own (B12): per address, 3 logins per 15 minutes,
8 refreshes, 30 POSTs, 10 DELETEs and 500 GETs an hour, 30 requests a minute, and a 30-minute ban
above 100 a minute; its 429 carries Retry-After and no `success` field. The suite's address is never
exempt (the production server exempts the loopback; here the loopback stands for a CI runner). One
count for the whole backend, however many instances the sandbox runs: as strict as a single process.

On the sandbox's time scale: the same counts over windows TIME_SCALE times shorter, because the
sandbox profiles pace TIME_SCALE times faster than production's default (sampling.max_rps 50 in
sandbox-deployed.toml against 0.4): the suite's share of each limit is a production run's.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

TIME_SCALE = 125.0
B11_LIMIT, B11_WINDOW_S = 100, 60.0
TOO_MANY = {"success": False, "error": "Too many requests"}      # B11's answer
RATE_LIMITED = {"error": "Rate limit exceeded"}                  # B12's: no success field
LOGIN, REFRESH = "/api/v1/auth/login", "/api/v1/auth/refresh"


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_s: float  # in production's time; divided by TIME_SCALE here
    applies: Callable[[str, str], bool]  # (method, path)


B12_RULES = (
    Rule("logins", 3, 900, lambda method, path: method == "POST" and path == LOGIN),
    Rule("refreshes", 8, 3600, lambda method, path: method == "POST" and path == REFRESH),
    Rule("POSTs", 30, 3600, lambda method, path: method == "POST"),
    Rule("DELETEs", 10, 3600, lambda method, path: method == "DELETE"),
    Rule("GETs", 500, 3600, lambda method, path: method == "GET"),
    Rule("requests", 30, 60, lambda method, path: True),
)
B12_BAN = (100, 60.0, 1800.0)  # above this many requests in this window: banned this long


class SlidingLimit:
    """At most `limit` admitted requests per client in any `window_s` (a sliding log: no window edge
    lets a burst of twice the limit through)."""

    def __init__(self, limit: int = B11_LIMIT, window_s: float = B11_WINDOW_S / TIME_SCALE):
        self.limit, self.window_s = limit, window_s
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, client: str, now: float) -> bool:
        seen = self._recent(client, now)
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True

    def count(self, client: str, now: float) -> int:
        return len(self._recent(client, now))

    def retry_after_s(self, client: str, now: float) -> float:
        """When the oldest admitted request leaves the window."""
        seen = self._recent(client, now)
        return seen[0] + self.window_s - now if seen else 0.0

    def _recent(self, client: str, now: float) -> deque[float]:
        seen = self._admitted.setdefault(client, deque())
        while seen and seen[0] <= now - self.window_s:
            seen.popleft()
        return seen


class ProductionLimits:
    """B12 on the sandbox's time scale: every rule a request matches must admit it; above the ban's
    rate the address is refused everything until the ban ends. A refusal's Retry-After in seconds."""

    def __init__(self, scale: float = TIME_SCALE):
        self.rules = [(rule, SlidingLimit(rule.limit, rule.window_s / scale)) for rule in B12_RULES]
        limit, window_s, ban_s = B12_BAN
        self._seen = SlidingLimit(10**9, window_s / scale)  # every request, to find the ban's rate
        self._ban_limit, self._ban_s = limit, ban_s / scale
        self._banned_until: dict[str, float] = {}

    def refuse(self, client: str, method: str, path: str, now: float) -> tuple[str, int] | None:
        """None to admit; else (the rule that refused, Retry-After in whole seconds)."""
        self._seen.admit(client, now)
        until = self._banned_until.get(client, 0.0)
        if now >= until and self._seen.count(client, now) > self._ban_limit:
            until = self._banned_until[client] = now + self._ban_s
        if now < until:
            return "ban", math.ceil(until - now)
        matching = [(rule, limit) for rule, limit in self.rules if rule.applies(method, path)]
        full = next(((rule, limit) for rule, limit in matching if limit.count(client, now) >= limit.limit), None)
        if full is not None:
            return full[0].name, max(1, math.ceil(full[1].retry_after_s(client, now)))
        for _, limit in matching:
            limit.admit(client, now)
        return None


def client_address(headers: dict[bytes, bytes], peer: tuple[str, int] | None) -> str:
    """Gin's ClientIP: the first X-Forwarded-For address, else the connection's."""
    forwarded = headers.get(b"x-forwarded-for", b"").decode().split(",")[0].strip()
    return forwarded or (peer[0] if peer else "unknown")
