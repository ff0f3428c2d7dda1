"""The prober: rounds of the checks that are due (schedule.py), each taken as a run takes it (holds in the
background, a failure confirmed), counted in /metrics and joined to the run-to-run memory; `/probe` runs
checks now. Rounds and probes share one client (client.py) for the prober's life: one session per account,
logged in once and logged out at the stop, one pace, and the budgets of the ledger kept beside the history,
which a restart reads back. A /probe the request budget cannot afford now answers from the last round, its
age said, or 429 with Retry-After: never by calling the platform. A round and a probe never overlap."""
from __future__ import annotations

import datetime as dt
import math
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import generate_latest

from .. import __version__, dependencies, history
from ..catalog import Catalog
from ..client import Client
from ..enrich import Context
from ..matrix import measure_with_load
from ..probes.budget import Ledger
from ..probes.window import SampleWindow
from ..profile import Profile
from ..quarantine import Entry
from ..record import CheckRecord
from ..reports.ecs import EcsLog
from ..run_result import RunFacts, RunResult
from ..target import Load
from .metrics import Metrics
from .schedule import Schedule


class Prober:
    def __init__(self, profile: Profile, catalog: Catalog, symptom_ids: list[str], location: str, history_dir: Path,
                 quarantined: Mapping[str, Entry] | None = None, ecs_log: EcsLog | None = None):
        self.profile, self.catalog, self.location, self.history_dir = profile, catalog, location, history_dir
        self.ecs_log = ecs_log  # each round's results as ECS lines, where asked
        self.redactor = profile.redactor()  # /report, /probe and the prober's own lines mask the profile's secrets
        self.context = Context(profile, self.redactor, quarantined or {})  # every record treated as a run's
        self.schedule = Schedule.of(profile.serve, catalog.symptoms, symptom_ids)
        self.metrics = Metrics()
        self.metrics.schedule(self.schedule.intervals, location)
        self.metrics.started.set(time.time())
        s = profile.serve
        self.ledger = Ledger(ledger_path(history_dir, profile.name, location), (s.max_logins, s.login_window_s),
                             (s.max_refreshes, s.refresh_window_s), (s.max_requests, s.request_window_s))
        window = SampleWindow(s.window_s, profile.sampling.requests) if s.window_s > 0 else None
        self.client = Client(profile, self.ledger, window, location)  # the session, pace, budgets, trust of every round
        self.metrics.budgets(self.ledger, location)
        self._probe_cost: dict[tuple[str, ...], int] = {}  # a probe's checks -> the requests they last cost
        # where the alert's links point: serve.external_url, else the address serve() listens on
        self.external_url = profile.serve.external_url.rstrip("/")
        self.latest: dict[tuple[str, str], CheckRecord] = {}  # (check, variant) -> its last round's record, for /report
        self.blocked: dict[str, str] = {}  # check id -> the dependency down when it last failed, for /report
        self.ready = threading.Event()
        self.stopping = threading.Event()
        self.busy = threading.Lock()  # a round or a probe: never two Targets, two sessions of one account, at once

    def one_round(self, ids: list[str]) -> list[str]:
        """The due checks measured and reported; the ids of those that failed (the schedule retries them)."""
        started, started_at = time.monotonic(), dt.datetime.now(dt.UTC)
        try:
            with self.busy:  # the round's deadline: before its checks are due again, if sooner than timeouts.run_s
                records, load = measure_with_load(self._within(max(self.schedule.intervals[i] for i in ids)), ids,
                                                  self.catalog, self.client, self.context,
                                                  retried=self.schedule.retry_s > 0)
            if self.stopping.is_set():  # cut short by the stop: its "not sent" are the prober's, not the platform's
                return []
            self._remember(records, started_at)
        except Exception as exc:  # the prober's own failure: counted and said, the schedule goes on
            self.metrics.round_errors.labels(self.location).inc()
            print(self.redactor.text(f"veza-synth serve: a round could not complete: {type(exc).__name__}: {exc}"),
                  file=sys.stderr, flush=True)
            return []
        self.metrics.record(records, self.location, time.time())
        if self.ecs_log is not None:
            self.ecs_log.write(records)
        self.metrics.verdicts(records, self.location, f"{self.external_url}/report", self.redactor)
        self.metrics.cost(load, self.location)
        self.metrics.rounds.labels(self.location).inc()
        self.metrics.round_duration.labels(self.location).set(round(time.monotonic() - started, 3))
        self.latest = {**self.latest, **{(r.id, r.variant): r for r in records}}  # swapped whole: /report reads it
        self.ready.set()
        return sorted({r.id for r in records if r.outcome == "failed"})

    def _within(self, seconds: float) -> Profile:
        """The profile as a round takes it: a run deadline of at most `seconds` (a round's interval, a scrape's
        timeout), serve.auth_calls `me` calls."""
        p = self.profile.with_changes("timeouts", run_s=min(self.profile.timeouts.run_s, max(seconds, 1.0)))
        return p.with_changes("sampling", auth_calls=p.serve.auth_calls)

    def _remember(self, records: list[CheckRecord], started_at: dt.datetime) -> None:
        """The round into the run-to-run memory of this env and location, its trends computed as a run's are."""
        p = self.profile
        facts = RunFacts(env=p.name, location=self.location, started_at=started_at.isoformat(),
                         finished_at=dt.datetime.now(dt.UTC).isoformat(), mode="serve", allow=p.allow,
                         suite_version=__version__)
        causes, states = None, None
        if any(r.outcome == "failed" for r in records):  # root cause first, as a run's report puts it
            grouped = dependencies.group(records, dependencies.probe(p, records, self.client.transport), self.catalog)
            records, causes, states = list(grouped.records), grouped.root_causes, grouped.dependencies
        blocked = {r.id: r.blocked_by for r in records if r.blocked_by}
        self.blocked = {**{sid: why for sid, why in self.blocked.items() if sid not in {r.id for r in records}},
                        **blocked}  # each check as its last round found it
        past = history.load(self.history_dir, p.name, self.location)
        annotated, used = history.annotate(records, facts.started_at, past, p.history)
        run = RunResult(facts, annotated, causes, states, used).document()
        history.add(self.history_dir, run, p.history.keep)

    def run(self) -> None:
        """Rounds of the due checks until stopped; a stop lets the round in progress finish."""
        self.schedule.start(time.monotonic())
        while not self.stopping.is_set():
            due = self.schedule.due(time.monotonic())
            if due:
                failed = self.one_round(due)
                self.schedule.ran(due, time.monotonic(), failed)
            self.stopping.wait(self.schedule.wait_s(time.monotonic()))

    def probe(self, symptom_ids: list[str], timeout_s: float) -> Answer:
        """The checks now, in a registry of their own, where the request budget affords what they last cost;
        else their last round's records with their age, or 429 with Retry-After. 503 when a round holds the
        platform past the timeout, 504 when the checks outlast it (they go on, each call bounded, and the next
        round reports them)."""
        key = tuple(symptom_ids)
        needed = self._probe_cost.get(key, 1)
        if self.ledger.requests.remaining() < needed:
            return self._from_last_round(symptom_ids, needed)
        deadline = time.monotonic() + timeout_s
        if not self.busy.acquire(timeout=max(0.0, timeout_s)):
            return Answer(503, b"a round is running: try again at the next scrape\n")
        done: dict[str, tuple[list[CheckRecord], Load]] = {}

        def run() -> None:
            try:
                done["run"] = measure_with_load(self._within(timeout_s), symptom_ids, self.catalog, self.client,
                                                self.context)
            finally:
                self.busy.release()
        worker = threading.Thread(target=run, name="veza-serve-probe", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if "run" not in done:
            return Answer(504, f"the checks outlasted the scrape timeout ({timeout_s:g} s)\n".encode())
        records, load = done["run"]
        self._probe_cost[key] = max(1, load.api_requests)
        self.metrics.cost(load, self.location)  # a probe's cost is the prober's, as a round's
        metrics = Metrics()
        metrics.record(records, self.location, time.time())
        metrics.round_duration.labels(self.location).set(round(time.monotonic() - started, 3))
        return Answer(200, generate_latest(metrics.registry))

    def _from_last_round(self, symptom_ids: list[str], needed: int) -> Answer:
        """What the last rounds said of these checks, each with its age; 429 where no round ran them yet."""
        records = [r for (sid, _), r in sorted(self.latest.items()) if sid in symptom_ids]
        free_in = max(1, math.ceil(self.ledger.requests.free_for(needed) - time.time()))
        if not records:
            return Answer(429, (f"the request budget ({self.ledger.requests.describe()}: serve.max_requests) cannot "
                                f"afford these checks ({needed} requests) now, and no round has run them yet\n").encode(),
                          {"Retry-After": str(free_in)})
        metrics = Metrics()
        metrics.record(records, self.location, time.time(), from_round=True)
        return Answer(200, generate_latest(metrics.registry))

    def stop(self) -> None:
        """The stop (SIGTERM): no round or probe waits any longer for a turn at the pace; the round in progress
        ends at its next request and is not reported."""
        self.stopping.set()
        if self.client.transport.pace is not None:
            self.client.transport.pace.halt()

    def close(self) -> None:
        """The prober's sessions logged out (the stop); its budget ledger left to the next prober."""
        self.client.close()
        self.ledger.close()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def ledger_path(history_dir: Path, env: str, location: str) -> Path:
    """The budget ledger of one env and location, beside its history (restarts read it back)."""
    return history_dir / f"budget-{env}-{location}.json".replace("/", "_")
