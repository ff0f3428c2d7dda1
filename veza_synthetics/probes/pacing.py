"""One pace per API origin for the whole run: every request to the platform's backend (the HTTP sample,
each check's own calls, logins and refreshes) takes its turn from one schedule, so the run as a whole
stays under the rate the profile declares (`sampling.max_rps`). Veza's production server counts every
request of an address together, 30 a minute, and answers 429 above that (B12); a suite pacing only its
sample would still be refused for the checks' calls around it. A 429's Retry-After pauses the origin
for every caller at once. Where a budget is given (serve's requests per window, budget.py), a turn is
free only when it allows one too: the pace is then the slower of the two."""
from __future__ import annotations

import asyncio
import math
import threading
import time

from .budget import Budget

MAX_PAUSE_S = 30.0  # the longest a Retry-After holds the run back (the run's own timeouts bound the rest)


GIVE_BACK_WITHIN_S = 600.0  # a turn's budget is given back within this long of its taking, or never
RECHECK_S = 0.2  # how often an event loop waiting for a turn looks again (a turn given back frees one early)


class OriginPace:
    """Turns at most `max_rps` a second, shared by threads and event loops alike, each taken when it is
    due (never reserved ahead). A turn whose request never reached the platform (its connection refused
    or never opened) is given back: a dead platform costs no waiting, and the next caller goes at once."""

    def __init__(self, max_rps: float, budget: Budget | None = None):
        self.max_rps, self.budget = max_rps, budget
        self._changed = threading.Condition()
        self._kept: list[float] = []  # the recent turns taken and not given back, latest last
        self._spent_at: dict[float, float] = {}  # a kept turn -> when the budget counted it (time.time())
        self._paused_until = 0.0
        self._halted = False  # the owner is stopping: no caller waits for a turn (halt, resume)
        self.turns = 0  # turns kept: requests that reached the platform, or may have

    def _free_at(self) -> float:
        if self._halted:
            return math.inf
        free = max(self._paused_until, self._kept[-1] + 1.0 / self.max_rps if self._kept else 0.0)
        if self.budget is not None:
            wall = time.time()
            budget_wait = self.budget.next_free(wall) - wall
            if budget_wait > 0:  # spent for now: free once its oldest spending leaves the window
                free = max(free, time.monotonic() + budget_wait)
        return free

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
            if self.budget is not None:
                spent = self.budget.try_spend()
                if spent is None:
                    return None
                # a turn is given back moments after it is taken, if ever: older ones are forgotten
                self._spent_at = {t: w for t, w in self._spent_at.items() if t > now - GIVE_BACK_WITHIN_S}
                self._spent_at[now] = spent
            self._kept = [t for t in self._kept if t > now - 1.0 / self.max_rps] + [now]
            self.turns += 1
            return now

    def wait(self) -> float | None:
        """A turn, when it is due; None once the pace is halted (the request is not sent)."""
        with self._changed:
            while (turn := self.try_take()) is None:
                if self._halted:
                    return None
                self._changed.wait(max(0.0, self._free_at() - time.monotonic()))
            return turn

    @property
    def halted(self) -> bool:
        return self._halted

    def halt(self) -> None:
        """Stop handing out turns: every caller waiting for one, and every later one, is told at once (a prober
        that is stopping does not wait minutes for its budget to send requests nobody will read)."""
        with self._changed:
            self._halted = True
            self._changed.notify_all()

    def resume(self) -> None:
        with self._changed:
            self._halted = False
            self._changed.notify_all()

    async def turn(self, stopped: asyncio.Event | None = None) -> float | None:
        """A turn for an event loop's request; None if `stopped` is set first (no turn taken)."""
        while (turn := self.try_take()) is None:
            if self._halted:
                return None
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
            spent = self._spent_at.pop(turn, None)
        if spent is not None and self.budget is not None:
            self.budget.give_back(spent)

    def pause(self, seconds: float) -> None:
        """A 429 said to wait: no caller starts a request before then."""
        with self._changed:
            self._paused_until = max(self._paused_until, time.monotonic() + min(max(seconds, 0.0), MAX_PAUSE_S))


def retry_after_s(value: str | None) -> float:
    """Retry-After in seconds (1 s where a 429 gives none, as Veza's in-memory limiter does, B11)."""
    try:
        return min(max(float(value or 1), 0.0), MAX_PAUSE_S)
    except ValueError:
        return 1.0
