"""What a prober may spend on the platform, whoever asks: logins, refreshes and API requests per window,
declared in the profile (serve.max_logins per serve.login_window_s, serve.max_refreshes per
serve.refresh_window_s, serve.max_requests per serve.request_window_s).
A sliding log in wall-clock seconds, kept in a file beside the history, so a restart, a /probe or a round
all draw on the one budget a platform's rate limiter sees (Veza's production server: 3 logins per 15
minutes, 8 refreshes an hour and 30 requests a minute per address, B12; the defaults stay well under).
One prober draws on a ledger at a time: a second serve of the same env and location (the same address, the same
budget) is refused at its start, as two would spend the budget twice."""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import SetupError


class Budget:
    """At most `limit` spent in any `window_s` seconds."""

    def __init__(self, name: str, limit: int, window_s: float, spent: list[float] | None = None,
                 changed: Callable[[], None] | None = None):
        self.name, self.limit, self.window_s = name, limit, window_s
        self._spent = sorted(spent or [])
        self._lock = threading.Lock()
        self._changed = changed or (lambda: None)

    def _recent(self, now: float) -> list[float]:
        self._spent = [t for t in self._spent if t > now - self.window_s]
        return self._spent

    def next_free(self, now: float | None = None) -> float:
        """When one more may be spent (a time.time(); now or earlier: at once)."""
        now = time.time() if now is None else now
        with self._lock:
            recent = self._recent(now)
            return now if len(recent) < self.limit else recent[len(recent) - self.limit] + self.window_s

    def free_for(self, n: int, now: float | None = None) -> float:
        """When `n` more may be spent at once (a time.time()); more than the limit: a whole window from now."""
        now = time.time() if now is None else now
        with self._lock:
            recent = self._recent(now)
            over = len(recent) + n - self.limit
            if n > self.limit:
                return now + self.window_s
            return now if over <= 0 else recent[over - 1] + self.window_s

    def remaining(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._lock:
            return max(0, self.limit - len(self._recent(now)))

    def try_spend(self, now: float | None = None) -> float | None:
        """Spend one now (its time) if the window allows, else None."""
        now = time.time() if now is None else now
        with self._lock:
            if len(self._recent(now)) >= self.limit:
                return None
            self._spent.append(now)
        self._changed()
        return now

    def give_back(self, at: float) -> None:
        """What was spent at `at` never reached the platform."""
        with self._lock:
            if at not in self._spent:
                return
            self._spent.remove(at)
        self._changed()

    def spent(self) -> list[float]:
        with self._lock:
            return list(self._recent(time.time()))

    def describe(self) -> str:
        return f"{self.limit} {self.name} per {self.window_s:g} s"


class Ledger:
    """A prober's budgets, saved to `path` at every change (None: kept in memory only)."""

    def __init__(self, path: Path | None, logins: tuple[int, float], refreshes: tuple[int, float],
                 requests: tuple[int, float]):
        """Each budget as (how many, per how many seconds)."""
        self.path = path
        self._held = self._hold()
        saved = self._read()
        self._lock = threading.Lock()
        self.logins = Budget("logins", *logins, saved.get("logins"), self.save)
        self.refreshes = Budget("refreshes", *refreshes, saved.get("refreshes"), self.save)
        self.requests = Budget("requests", *requests, saved.get("requests"), self.save)

    def _hold(self) -> IO[str] | None:
        """The ledger's lock for this prober's life (released by close(), or by the process's end)."""
        if self.path is None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.fdopen(os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644), "r+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise SetupError(f"{self.path}: another veza-synth serve (pid {holder}) draws on this budget ledger: one "
                             "prober per env and location (--location), or another --history") from None
        lock.seek(0)
        lock.write(f"{os.getpid():<20}\n")  # a fixed width: a shorter pid leaves nothing of a longer one behind
        lock.flush()
        return lock

    def close(self) -> None:
        if self._held is not None:
            self._held.close()  # the lock goes with the file
            self._held = None

    def budgets(self) -> tuple[Budget, ...]:
        return self.logins, self.refreshes, self.requests

    def _read(self) -> dict[str, list[float]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
            return {k: [float(t) for t in data.get(k, [])] for k in ("logins", "refreshes", "requests")}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}  # an unreadable ledger: the budget starts empty, as for a first start

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data = {budget.name: budget.spent() for budget in self.budgets()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".tmp")
            partial.write_text(json.dumps(data))
            partial.replace(self.path)
