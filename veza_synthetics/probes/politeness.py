"""What a sample owes the platform it measures: the declared pace, a pause after each 429, and when to stop
asking (throttled, unreachable, only failures, or the answer already decided)."""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from . import decided_above
from .pacing import OriginPace, retry_after_s

GIVE_UP_AFTER_THROTTLED = 5  # refusals after which a polite client stops asking
GIVE_UP_AFTER_NOT_CONNECTED = 5  # connections in a row that never opened: the backend is unreachable
FAILING_ANSWERS_PER_WORKER = 2  # with no success at all, this many failures per concurrent worker end the sample


@dataclass(frozen=True)
class Pace:
    """How the sample treats its target: at most `concurrency` requests in flight, started at most
    `max_rps` a second (what one user's client does, and what the front door's rate limit allows)."""
    requests: int
    concurrency: int
    max_rps: float
    decided_above_ms: float | None = None  # stop once an endpoint's p95 is sure to be above this
    decided_timeout_pct: float | None = None  # stop once the share of timeouts is sure to reach this
    deadline: float | None = None  # a time.monotonic() past which no request is sent (the run's deadline)

    def planned(self, endpoints: int) -> list[int]:
        """Requests planned per endpoint (they go round-robin)."""
        return [len(range(i, self.requests, endpoints)) for i in range(endpoints)]


class Politeness:
    """What one sample owes its target: the declared pace (the run's pace of this API where the run declared
    one, else its own), a pause after each 429, and when to stop asking: five 429s; only failures so far, 2
    per concurrent worker; five connections in a row that never opened; an endpoint's p95, or the share of
    timeouts, already decided.
    Once stopped, the requests still waiting for a turn give it back at once: stopping costs no time."""

    def __init__(self, pace: Pace, names: list[str], origin: OriginPace | None):
        self.pace, self.origin = pace, origin or OriginPace(pace.max_rps)
        self.stopped, self.reason, self.not_sent = asyncio.Event(), "", ""
        self.throttled = self.failed = self.succeeded = self.not_connected_in_a_row = self.timeouts = 0
        share = pace.decided_timeout_pct
        self.timeouts_enough = None if share is None else max(1, math.ceil(share / 100 * pace.requests))
        self.slow = dict.fromkeys(names, 0)
        self.slow_enough = {name: decided_above(n) for name, n in zip(names, pace.planned(len(names)), strict=True)}
        self.decided_by = ""  # the endpoint whose p95 is decided above pace.decided_above_ms

    async def wait_turn(self) -> float | None:
        """This request's turn, or None when the sample stopped before it came (or its deadline did)."""
        deadline = self.pace.deadline
        if self.origin.halted:
            self._stop("halted")
        elif deadline is not None and not self.stopped.is_set() and max(self.origin.free_at(), time.monotonic()) > deadline:
            self._stop("deadline")
        if self.stopped.is_set():
            return None
        turn = await self.origin.turn(self.stopped)
        if turn is None:
            self._stop("halted")  # the pace was halted (its owner is stopping), if the sample did not stop first
        return turn

    def not_sent_now(self, turn: float, why: str) -> None:
        """The API is not answering (answering.py): this request was not sent, nor will the others be."""
        self.origin.give_back(turn)
        self.not_sent = self.not_sent or why
        self._stop("not_answering")

    def _stop(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            self.stopped.set()

    def _stop_reason(self) -> str:
        if self.throttled >= GIVE_UP_AFTER_THROTTLED:
            return "throttled"
        if self.not_connected_in_a_row >= GIVE_UP_AFTER_NOT_CONNECTED:
            return "unreachable"
        if not self.succeeded and self.failed >= FAILING_ANSWERS_PER_WORKER * self.pace.concurrency:
            return "failing"
        if self.timeouts_enough is not None and self.timeouts >= self.timeouts_enough:
            return "timeouts"
        return "decided" if self.decided_by else ""

    def answered(self, name: str, outcome: dict[str, Any], elapsed_ms: float, turn: float) -> None:
        if outcome.get("not_connected"):
            self.origin.give_back(turn)  # nothing reached the platform
            self.not_connected_in_a_row += 1
        else:
            self.not_connected_in_a_row = 0
        self.timeouts += bool(outcome.get("timeout"))
        if outcome.get("status") == 429:
            self.throttled += 1
            self.origin.pause(retry_after_s(outcome.get("retry_after")))
        if answered_ok(outcome):
            self.succeeded += 1
            if self.pace.decided_above_ms is not None and elapsed_ms > self.pace.decided_above_ms:
                self.slow[name] += 1
                if self.slow[name] >= self.slow_enough[name] and not self.decided_by:
                    self.decided_by = name
        elif outcome["status"] is None or outcome["status"] >= 500:
            self.failed += 1
        reason = self._stop_reason()
        if reason:
            self._stop(reason)


def answered_ok(record: dict[str, Any]) -> bool:
    status = record.get("status")
    return status is not None and 200 <= status < 400
