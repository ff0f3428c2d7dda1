"""When each check runs in serve mode: its own interval (`serve.intervals` by check id, else by category,
else `serve.interval_s`), kept on its planned times so that checks of commensurate intervals meet in one
round (health every 60 s, the rest every 900 s: at 900 s one round holds them all, one login). A check that failed
runs again after the retry interval where that is sooner: the second failed round, which pages, comes then."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..catalog import Symptom
from ..settings import Serve


@dataclass
class Schedule:
    intervals: Mapping[str, float]  # check id -> seconds between its rounds
    retry_s: float = 0.0  # after a failed round, the check runs again this soon (0: at its interval)
    next_at: dict[str, float] = field(default_factory=dict)  # check id -> planned time (time.monotonic)

    @classmethod
    def of(cls, serve: Serve, symptoms: Mapping[str, Symptom], ids: Iterable[str]) -> Schedule:
        return cls({sid: float(serve.intervals.get(sid, serve.intervals.get(symptoms[sid].category, serve.interval_s)))
                    for sid in ids}, serve.retry_interval_s)

    def start(self, now: float) -> None:
        """Every check is due at once: the first round holds them all."""
        self.next_at = dict.fromkeys(self.intervals, now)

    def due(self, now: float) -> list[str]:
        return sorted(sid for sid, at in self.next_at.items() if at <= now)

    def ran(self, ids: Iterable[str], now: float, failed: Iterable[str] = ()) -> None:
        """The next planned time of each check after a round; a round that overran a check's interval makes it
        due at once, never a burst of the rounds it missed. A failed check comes back after the retry interval
        where that is sooner, and then on its own plan again."""
        failed = set(failed)
        for sid in ids:
            planned = max(self.next_at[sid] + self.intervals[sid], now)
            self.next_at[sid] = min(planned, now + self.retry_s) if sid in failed and self.retry_s > 0 else planned

    def wait_s(self, now: float) -> float:
        return max(0.0, min(self.next_at.values()) - now)

    def by_interval(self) -> dict[float, list[str]]:
        """Check ids by interval, for the start line and docs/ways/serve.md's cost figures."""
        out: dict[float, list[str]] = {}
        for sid, interval in sorted(self.intervals.items(), key=lambda item: (item[1], item[0])):
            out.setdefault(interval, []).append(sid)
        return out
