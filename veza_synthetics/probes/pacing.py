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


RECHECK_S = 0.2  # how often an event loop waiting for a turn looks again (a turn given back frees one early)


class OriginPace:
    """Turns at most `max_rps` a second, shared by threads and event loops alike, each taken when it is
    due (never reserved ahead). A turn whose request never reached the platform (its connection refused
    or never opened) is given back: a dead platform costs no waiting, and the next caller goes at once."""

    def __init__(self, max_rps: float):
        self.max_rps = max_rps
        self._changed = threading.Condition()
        self._kept: list[float] = []  # the recent turns taken and not given back, latest last
        self._paused_until = 0.0
        self.turns = 0  # turns kept: requests that reached the platform, or may have

    def _free_at(self) -> float:
        return max(self._paused_until, self._kept[-1] + 1.0 / self.max_rps if self._kept else 0.0)

    def free_at(self) -> float:
        """When the next turn is free (a monotonic time; in the past: now)."""
        with self._changed:
            return self._free_at()

    def try_take(self) -> float | None:
        """A turn now (its time) if one is free, else None."""
        with self._changed:
            now = time.monotonic()
            if self._free_at() > now:
                return None
            self._kept = [t for t in self._kept if t > now - 1.0 / self.max_rps] + [now]
            self.turns += 1
            return now

    def wait(self) -> float:
        with self._changed:
            while (turn := self.try_take()) is None:
                self._changed.wait(max(0.0, self._free_at() - time.monotonic()))
            return turn

    async def turn(self, stopped: asyncio.Event | None = None) -> float | None:
        """A turn for an event loop's request; None if `stopped` is set first (no turn taken)."""
        while (turn := self.try_take()) is None:
            delay = min(RECHECK_S, max(0.0, self.free_at() - time.monotonic()))
            if stopped is None:
                await asyncio.sleep(delay)
                continue
            try:
                await asyncio.wait_for(stopped.wait(), timeout=delay)
                return None
            except TimeoutError:
                pass
        return turn

    def give_back(self, turn: float) -> None:
        """This turn's request never reached the platform: the next caller need not wait for it. Only the
        spacing between the turns kept is ever promised."""
        with self._changed:
            if turn in self._kept:
                self._kept.remove(turn)
                self.turns -= 1
                self._changed.notify_all()

    def pause(self, seconds: float) -> None:
        """A 429 said to wait: no caller starts a request before then."""
        with self._changed:
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
