"""The prober: rounds of the checks that are due (schedule.py), each taken as a run takes it (holds in the
background, a failure confirmed, one session per account logged out at its end, the run's pace), counted
in /metrics and joined to the run-to-run memory; `/probe` runs checks now. A round and a probe never
overlap: one session per account at a time, as Veza keeps them (B10)."""
from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from pathlib import Path

from prometheus_client import generate_latest

from .. import history
from ..catalog import Catalog
from ..matrix import measure_with_load
from ..profile import Profile
from ..record import SCHEMA_VERSION, CheckRecord
from .metrics import Metrics
from .schedule import Schedule


class Prober:
    def __init__(self, profile: Profile, catalog: Catalog, symptom_ids: list[str], location: str, history_dir: Path):
        self.profile, self.catalog, self.location, self.history_dir = profile, catalog, location, history_dir
        self.redactor = profile.redactor()  # /report, /probe and the prober's own lines mask the profile's secrets
        self.schedule = Schedule.of(profile.serve, catalog.symptoms, symptom_ids)
        self.metrics = Metrics()
        self.metrics.schedule(self.schedule.intervals, location)
        self.metrics.started.set(time.time())
        self.latest: dict[tuple[str, str], CheckRecord] = {}  # (check, variant) -> its last round's record, for /report
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.busy = threading.Lock()  # a round or a probe: never two Targets, two sessions of one account, at once

    def one_round(self, ids: list[str]) -> None:
        started, started_at = time.monotonic(), dt.datetime.now(dt.UTC)
        try:
            with self.busy:  # the round's deadline: before its checks are due again, if sooner than timeouts.run_s
                records, load = measure_with_load(self._within(max(self.schedule.intervals[i] for i in ids)), ids,
                                                  self.catalog)
            self._remember(records, started_at)
        except Exception as exc:  # the prober's own failure: counted and said, the schedule goes on
            self.metrics.round_errors.labels(self.location).inc()
            print(self.redactor.text(f"veza-synth serve: a round could not complete: {type(exc).__name__}: {exc}"),
                  file=sys.stderr, flush=True)
            return
        self.metrics.record(records, self.location, time.time())
        self.metrics.cost(load, self.location)
        self.metrics.rounds.labels(self.location).inc()
        self.metrics.round_duration.labels(self.location).set(round(time.monotonic() - started, 3))
        self.latest = {**self.latest, **{(r.id, r.variant): r for r in records}}  # swapped whole: /report reads it
        self.ready.set()

    def _within(self, seconds: float) -> Profile:
        """The profile with a run deadline of at most `seconds` (a round's interval, a scrape's timeout)."""
        return self.profile.with_changes("timeouts", run_s=min(self.profile.timeouts.run_s, max(seconds, 1.0)))

    def _remember(self, records: list[CheckRecord], started_at: dt.datetime) -> None:
        """The round into the run-to-run memory of this env and location, its trends computed as a run's are."""
        p = self.profile
        run = {"schema_version": SCHEMA_VERSION, "env": p.name, "location": self.location, "mode": "serve",
               "started_at": started_at.isoformat(), "finished_at": dt.datetime.now(dt.UTC).isoformat(),
               "checks": [r.to_json() for r in records]}
        run = history.annotate(run, history.load(self.history_dir, p.name, self.location), p.history)
        history.add(self.history_dir, run, p.history.keep)

    def run(self) -> None:
        """Rounds of the due checks until stopped; a stop lets the round in progress finish."""
        self.schedule.start(time.monotonic())
        while not self.stopping.is_set():
            due = self.schedule.due(time.monotonic())
            if due:
                self.one_round(due)
                self.schedule.ran(due, time.monotonic())
            self.stopping.wait(self.schedule.wait_s(time.monotonic()))

    def probe(self, symptom_ids: list[str], timeout_s: float) -> tuple[int, bytes]:
        """The checks now, in a registry of their own; 503 when a round holds the platform past the timeout,
        504 when the checks outlast it (they go on, each call bounded, and the next round reports them)."""
        deadline = time.monotonic() + timeout_s
        if not self.busy.acquire(timeout=max(0.0, timeout_s)):
            return 503, b"a round is running: try again at the next scrape\n"
        done: dict[str, list[CheckRecord]] = {}

        def run() -> None:
            try:
                done["records"] = measure_with_load(self._within(timeout_s), symptom_ids, self.catalog)[0]
            finally:
                self.busy.release()
        worker = threading.Thread(target=run, name="veza-serve-probe", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if "records" not in done:
            return 504, f"the checks outlasted the scrape timeout ({timeout_s:g} s)\n".encode()
        metrics = Metrics()
        metrics.record(done["records"], self.location, time.time())
        metrics.round_duration.labels(self.location).set(round(time.monotonic() - started, 3))
        return 200, generate_latest(metrics.registry)
