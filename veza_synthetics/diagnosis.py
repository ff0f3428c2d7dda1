"""Run one check the way the suite promises: measure, judge, and confirm a failure before reporting it."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from .catalog import Symptom
from .checks import registry
from .probes import identity
from .record import CheckRecord, check_record
from .redact import Redactor
from .target import Target
from .tracing import SpanExport
from .verdict import Verdict

Measure = Callable[[Verdict, int], None]  # fills a fresh verdict; the int is the attempt (1, then 2 to confirm)


@dataclass(frozen=True)
class Attempt:
    verdict: Verdict
    started: float  # time.perf_counter() when it began


@contextlib.contextmanager
def _attempting(symptom: Symptom, overrides: dict[str, dict[str, float]] | None,
                spans: SpanExport | None) -> Iterator[Attempt]:
    """One attempt's fresh verdict, its trace id (every request of the attempt carries it) and start time; a bug
    or an unforeseen answer inside is said plainly, as a failure. Its spans go to the collector, where one is set."""
    attempt, started_ns = Attempt(Verdict.for_symptom(symptom, overrides), time.perf_counter()), time.time_ns()
    with identity.attempt_trace() as trace:
        attempt.verdict.trace_id = trace.trace_id
        try:
            yield attempt
        except Exception as exc:
            attempt.verdict.error("check", symptom.id, f"could not complete: {type(exc).__name__}: {exc}")
        if spans is not None:
            verdict = attempt.verdict
            spans.attempt(trace, symptom.id, symptom.category, verdict.outcome, verdict.summary(), started_ns)


def measure_once(symptom: Symptom, measure: Measure, overrides: dict[str, dict[str, float]] | None,
                 attempt: int, spans: SpanExport | None = None) -> Attempt:
    with _attempting(symptom, overrides, spans) as measured:
        measure(measured.verdict, attempt)
    return measured


def confirm(symptom: Symptom, measure: Measure, redactor: Redactor, overrides: dict[str, dict[str, float]] | None = None,
            writes: bool = False, first: Attempt | None = None,
            spans: SpanExport | None = None, retried: bool = False) -> tuple[CheckRecord, Verdict]:
    """The check's record (what every report shows) and its final verdict.

    A failure is measured a second time; only a confirmed failure fails. Both
    measurements are kept, so a blip that went away is still visible in the report.
    `first` is an attempt already measured (in the background, for a check that holds); `spans` where each
    attempt's spans go (the client's, when the profile names a collector). `retried`: serve runs a failed check
    again a retry interval later and pages on two failed rounds, so that round is the confirmation, not a second
    measurement now (which would cost the request budget twice, and delay the round).
    """
    first = first or measure_once(symptom, measure, overrides, 1, spans)
    failed = first.verdict.outcome == "failed"
    second = measure_once(symptom, measure, overrides, 2, spans) if failed and not retried else None
    if failed and retried:
        first.verdict.note("not measured again in this round: the next one, a retry interval away "
                           "(serve.retry_interval_s), confirms it; two failed rounds page")
    return _record(symptom, first, second, writes, redactor)


async def confirm_async(symptom: Symptom, measure: Callable[[Verdict, int], Awaitable[None]], redactor: Redactor,
                        overrides: dict[str, dict[str, float]] | None = None,
                        writes: bool = False, spans: SpanExport | None = None) -> tuple[CheckRecord, Verdict]:
    """confirm() for an async measure (a hand-written `async def` check under pytest-asyncio)."""
    async def once(attempt: int) -> Attempt:
        with _attempting(symptom, overrides, spans) as measured:
            await measure(measured.verdict, attempt)
        return measured
    first = await once(1)
    second = await once(2) if first.verdict.outcome == "failed" else None
    return _record(symptom, first, second, writes, redactor)


def _record(symptom: Symptom, first: Attempt, second: Attempt | None, writes: bool,
            redactor: Redactor) -> tuple[CheckRecord, Verdict]:
    attempts = [first.verdict] if second is None else [first.verdict, second.verdict]
    final = attempts[-1]
    if second is not None and final.outcome != "failed":
        final.note(f"first measurement failed ({first.verdict.summary()}); the re-measurement did not confirm it")
    return check_record(symptom, final, attempts, writes, time.perf_counter() - first.started, redactor), final


def _catalog_measure(symptom_id: str, target: Target, writes: bool) -> Measure:
    check = registry(target.catalog).checks[(symptom_id, writes)]
    return lambda v, attempt: check(v, target, attempt)


def diagnose(symptom_id: str, target: Target, writes: bool = False,
             retried: bool = False) -> tuple[CheckRecord, Verdict]:
    """A catalog check against the target, confirmed (unless `retried`: serve's next round confirms it); its first
    attempt taken from the background where start_holds() began it."""
    early = target.early(symptom_id) if not writes else None
    return confirm(target.catalog.symptoms[symptom_id], _catalog_measure(symptom_id, target, writes), target.redactor,
                   target.profile.threshold_overrides(symptom_id), writes, first=early.result() if early else None,
                   spans=target.client.spans, retried=retried)


def start_holds(target: Target, symptom_ids: set[str]) -> list[str]:
    """Begin, in the background, the first attempt of every check among these that holds on purpose, so
    the run costs its longest hold rather than their sum. Returns the ids started."""
    holding = sorted(symptom_ids & registry(target.catalog).holds)
    symptoms, overrides = target.catalog.symptoms, target.profile.threshold_overrides

    def first_attempt(sid: str) -> Callable[[], Attempt]:
        return lambda: measure_once(symptoms[sid], _catalog_measure(sid, target, False), overrides(sid), 1,
                                    target.client.spans)
    target.start_early({sid: first_attempt(sid) for sid in holding})
    return holding
