"""The prober's /metrics, in Prometheus's conventions: base units (seconds, ratios, bytes), `_seconds`,
`_total`, one series per outcome (1 for the current). Per check and location: its outcome, its key
measurements beside their thresholds (the value each threshold's condition resolved to: the worst where
several endpoints were judged), consecutive failed rounds (the rules page on that, whatever the interval),
its interval, the time of its last round and last success, its last verdict with the links an alert quotes.
Per location: rounds, rounds that could not complete, what the rounds and probes cost the platform (logins,
API requests, chat messages) and the budgets they draw on (limit, window, spent, remaining)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Info

from .. import __version__
from ..outcome import Outcome
from ..probes.budget import Budget, Ledger
from ..record import CheckRecord
from ..redact import Redactor
from ..reports.html import anchor
from ..target import Load

OUTCOMES = tuple(Outcome)
CHECK_LABELS = ["symptom", "variant", "location"]
VERDICT_CHARS = 300  # a verdict quoted in a page: its first conditions, the rest is one click away
# The catalog's units in Prometheus's base units: (factor, unit label).
BASE_UNITS = {"ms": (0.001, "seconds"), "s": (1.0, "seconds"), "days": (86400.0, "seconds"), "%": (0.01, "ratio"),
              "B": (1.0, "bytes"), "Hz": (1.0, "hertz")}


def in_base_units(value: float, unit: str) -> tuple[float, str]:
    factor, base = BASE_UNITS.get(unit, (1.0, unit.replace(" ", "_")))
    return value * factor, base


def key_measurements(record: CheckRecord) -> dict[str, float]:
    """Threshold name -> the value its conditions resolved to, the worst of them (a p95 judged per endpoint)."""
    out: dict[str, float] = {}
    for condition in record.conditions:
        name, value = condition.get("threshold"), condition.get("value")
        threshold: Mapping[str, Any] = record.thresholds.get(name or "", {})
        if not threshold or not isinstance(value, (int, float)):
            continue
        worse = max if threshold.get("bad_when") == "above" else min
        out[str(name)] = worse(out[str(name)], float(value)) if name in out else float(value)
    return out


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        Info("veza_synthetic_build", "The prober's version", registry=r).info({"version": __version__})
        self.outcome = Gauge("veza_synthetic_check_outcome", "1 for the outcome of the check's last round, 0 for the others",
                             [*CHECK_LABELS, "outcome"], registry=r)
        self.failed_rounds = Gauge("veza_synthetic_check_consecutive_failed_rounds",
                                   "Rounds in a row the check has failed (each failure confirmed); 0 once it does not",
                                   CHECK_LABELS, registry=r)
        self.measurement = Gauge("veza_synthetic_check_measurement", "The value the check's last round judged against "
                                 "a threshold (the worst of its endpoints), in base units", [*CHECK_LABELS, "threshold", "unit"],
                                 registry=r)
        self.threshold = Gauge("veza_synthetic_check_threshold", "The check's threshold levels, in base units",
                               ["symptom", "threshold", "unit", "level", "location"], registry=r)
        self.interval = Gauge("veza_synthetic_check_interval_seconds", "Seconds between the check's rounds",
                              ["symptom", "location"], registry=r)
        self.last_round = Gauge("veza_synthetic_check_last_round_timestamp_seconds", "When the check last finished a round",
                                CHECK_LABELS, registry=r)
        self.last_success = Gauge("veza_synthetic_check_last_success_timestamp_seconds",
                                  "When the check last passed (or degraded without failing)", CHECK_LABELS, registry=r)
        self.duration = Gauge("veza_synthetic_check_duration_seconds", "How long the check's last round took",
                              CHECK_LABELS, registry=r)
        self.rounds = Counter("veza_synthetic_rounds", "Rounds finished", ["location"], registry=r)
        self.round_errors = Counter("veza_synthetic_round_errors", "Rounds that could not complete (the prober's own "
                                    "fault, never a check's verdict)", ["location"], registry=r)
        self.round_duration = Gauge("veza_synthetic_round_duration_seconds", "How long the last round took",
                                    ["location"], registry=r)
        self.logins = Counter("veza_synthetic_logins", "Logins the rounds made", ["location"], registry=r)
        self.api_requests = Counter("veza_synthetic_api_requests", "Requests the rounds sent to the backend",
                                    ["location"], registry=r)
        self.chat_messages = Counter("veza_synthetic_chat_messages", "Chat messages the rounds sent", ["location"], registry=r)
        self.age = Gauge("veza_synthetic_check_age_seconds", "How old the check's last record is: 0 for a round just "
                         "finished; a /probe the request budget could not afford answers with older ones",
                         CHECK_LABELS, registry=r)
        self.verdict = Gauge("veza_synthetic_check_verdict_info", "The check's last verdict and where to read it: its "
                             "/report entry and its runbook (the alert's annotations quote them)",
                             [*CHECK_LABELS, "verdict", "report_url", "runbook_url"], registry=r)
        self._verdict_labels: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.budget_limit = Gauge("veza_synthetic_budget_limit", "What the prober may spend per window (serve.max_logins, "
                                  "serve.max_requests)", ["budget", "location"], registry=r)
        self.budget_window = Gauge("veza_synthetic_budget_window_seconds", "The budget's window", ["budget", "location"],
                                   registry=r)
        self.budget_spent = Gauge("veza_synthetic_budget_spent", "Spent in the last window, by every round, probe and "
                                  "earlier run of the prober", ["budget", "location"], registry=r)
        self.budget_remaining = Gauge("veza_synthetic_budget_remaining", "What may still be spent now",
                                      ["budget", "location"], registry=r)
        self.started = Gauge("veza_synthetic_start_time_seconds", "When the prober started", registry=r)
        self._failed_in_a_row: dict[tuple[str, str, str], int] = {}

    def schedule(self, intervals: Mapping[str, float], location: str) -> None:
        """The schedule, and the location's counters at 0 from the start (a series that appears only at its
        first error is invisible to rate() and to an alert on it)."""
        for counter in (self.rounds, self.round_errors, self.logins, self.api_requests, self.chat_messages):
            counter.labels(location)
        for sid, seconds in intervals.items():
            self.interval.labels(symptom=sid, location=location).set(seconds)

    def budgets(self, ledger: Ledger, location: str) -> None:
        """The ledger's budgets, read at each scrape."""
        for budget in ledger.budgets():
            self.budget_limit.labels(budget.name, location).set(budget.limit)
            self.budget_window.labels(budget.name, location).set(budget.window_s)
            self.budget_spent.labels(budget.name, location).set_function(_spent(budget))
            self.budget_remaining.labels(budget.name, location).set_function(budget.remaining)

    def record(self, records: Iterable[CheckRecord], location: str, finished: float, from_round: bool = False) -> None:
        """Each record's series; `from_round`: records of earlier rounds, their own times kept."""
        for rec in records:
            labels = {"symptom": rec.id, "variant": rec.variant, "location": location}
            if from_round:
                finished = dt.datetime.fromisoformat(rec.finished_at).timestamp()
            self.age.labels(**labels).set(round(max(0.0, dt.datetime.now(dt.UTC).timestamp() - finished), 3))
            for outcome in OUTCOMES:
                self.outcome.labels(**labels, outcome=outcome).set(1 if rec.outcome == outcome else 0)
            key = (rec.id, rec.variant, location)
            paging = rec.outcome == "failed" and not rec.quarantined  # a quarantined failure reports, never pages
            self._failed_in_a_row[key] = self._failed_in_a_row.get(key, 0) + 1 if paging else 0
            self.failed_rounds.labels(**labels).set(self._failed_in_a_row[key])
            for name, value in key_measurements(rec).items():
                unit = str(rec.thresholds[name].get("unit", ""))
                base_value, base_unit = in_base_units(value, unit)
                self.measurement.labels(**labels, threshold=name, unit=base_unit).set(base_value)
                for level in ("warn", "fail"):
                    if isinstance(rec.thresholds[name].get(level), (int, float)):
                        self.threshold.labels(symptom=rec.id, threshold=name, unit=base_unit, level=level,
                                              location=location).set(in_base_units(rec.thresholds[name][level], unit)[0])
            self.last_round.labels(**labels).set(finished)
            self.duration.labels(**labels).set(rec.duration_s)
            if rec.outcome in ("passed", "degraded"):
                self.last_success.labels(**labels).set(finished)

    def verdicts(self, records: Iterable[CheckRecord], location: str, report_url: str, redactor: Redactor) -> None:
        """Each check's verdict (redacted, one line) and the links to its /report entry and runbook; the previous
        verdict's series goes, so a check has one."""
        for rec in records:
            key = (rec.id, rec.variant, location)
            place = f"{report_url}#{anchor(rec.id, rec.variant)}"
            labels = (*key, redactor.text(rec.summary)[:VERDICT_CHARS], place, f"{place}-runbook")
            old = self._verdict_labels.get(key)
            if old is not None and old != labels:
                self.verdict.remove(*old)
            self.verdict.labels(*labels).set(1)
            self._verdict_labels[key] = labels

    def cost(self, load: Load, location: str) -> None:
        self.logins.labels(location).inc(load.logins)
        self.api_requests.labels(location).inc(load.api_requests)
        self.chat_messages.labels(location).inc(load.chat_messages)


def _spent(budget: Budget) -> Callable[[], float]:
    return lambda: float(len(budget.spent()))
