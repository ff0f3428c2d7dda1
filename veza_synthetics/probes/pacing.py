"""One pace per API origin for the whole run: every request to the platform's backend (the HTTP sample,
each check's own calls, logins and refreshes) takes its turn from one schedule, so the run as a whole
stays under the rate the profile declares (`sampling.max_rps`). Veza's production server counts every
request of an address together, 30 a minute, and answers 429 above that (B12); a suite pacing only its
sample would still be refused for the checks' calls around it. A 429's Retry-After pauses the origin
for every caller at once."""
from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlsplit

MAX_PAUSE_S = 30.0  # the longest a Retry-After holds the run back (the run's own timeouts bound the rest)


class OriginPace:
    """Turns at most `max_rps` a second, shared by threads and event loops alike."""

    def __init__(self, max_rps: float):
        self.max_rps = max_rps
        self._lock = threading.Lock()
        self._next = self._paused_until = 0.0
        self.turns = 0

    def _reserve(self) -> float:
        with self._lock:
            start = max(time.monotonic(), self._next, self._paused_until)
            self._next = start + 1.0 / self.max_rps
            self.turns += 1
            return start

    def wait(self) -> None:
        time.sleep(max(0.0, self._reserve() - time.monotonic()))

    async def turn(self) -> None:
        await asyncio.sleep(max(0.0, self._reserve() - time.monotonic()))

    def pause(self, seconds: float) -> None:
        """A 429 said to wait: no caller starts a request before then."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + min(max(seconds, 0.0), MAX_PAUSE_S))


_paces: dict[str, OriginPace] = {}
_registry_lock = threading.Lock()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def declare(url: str, max_rps: float) -> OriginPace:
    """Pace every later request to this URL's origin (a run declares its backend's when it starts)."""
    with _registry_lock:
        pace = _paces[_origin(url)] = OriginPace(max_rps)
        return pace


def retire(url: str, pace: OriginPace) -> None:
    """The run that declared this pace is over (a later declaration of the origin stays)."""
    with _registry_lock:
        if _paces.get(_origin(url)) is pace:
            del _paces[_origin(url)]


def of(url: str) -> OriginPace | None:
    """The declared pace of the URL's origin, if any (other origins are not paced)."""
    with _registry_lock:
        return _paces.get(_origin(url))


def retry_after_s(value: str | None) -> float:
    """Retry-After in seconds (1 s where a 429 gives none, as Veza's in-memory limiter does, B11)."""
    try:
        return min(max(float(value or 1), 0.0), MAX_PAUSE_S)
    except ValueError:
        return 1.0
