"""The recent requests of serve's small samples, judged together. At production's pace and within its request
budget a prober cannot send an 80-request sample every minute; it sends a few each round, and the checks judge
the requests of the last `max_age_s` seconds (serve.window_s) as one sample: a 5xx or a timeout counts at once,
a latency needs enough requests to be decided, and the verdict says how many and since when."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any


class SampleWindow:
    def __init__(self, max_age_s: float, max_requests: int):
        self.max_age_s, self.max_requests = max_age_s, max_requests
        self._kept: list[tuple[float, dict[str, Any]]] = []  # (time.monotonic(), a sampled request), oldest first
        self._lock = threading.Lock()

    def add(self, sent: Iterable[dict[str, Any]]) -> None:
        now = time.monotonic()
        with self._lock:
            self._kept = [*self._recent(now), *((now, r) for r in sent)][-self.max_requests:]

    def recent(self) -> list[dict[str, Any]]:
        """The requests still in the window, oldest first."""
        with self._lock:
            self._kept = self._recent(time.monotonic())
            return [r for _, r in self._kept]

    def _recent(self, now: float) -> list[tuple[float, dict[str, Any]]]:
        return [(at, r) for at, r in self._kept if at > now - self.max_age_s]
