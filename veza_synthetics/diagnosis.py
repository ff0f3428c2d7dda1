"""Run one check the way the suite promises: measure, judge, and confirm a failure before reporting it."""
from __future__ import annotations

import time

from . import catalog
from .checks import CHECKS
from .report import result_record
from .target import Target
from .verdict import Verdict


def diagnose(symptom_id: str, target: Target, writes: bool = False) -> tuple[dict, Verdict]:
    """The check's record (what every report shows) and its final verdict.

    A failure is measured a second time; only a confirmed failure fails. Both
    measurements are kept, so a blip that went away is still visible in the report.
    """
    symptom = catalog.load().symptoms[symptom_id]
    attempts = []
    started = time.perf_counter()
    for attempt in (1, 2):
        verdict = Verdict.for_symptom(symptom, target.profile.threshold_overrides(symptom_id))
        try:
            CHECKS[(symptom_id, writes)](verdict, target, attempt)
        except Exception as exc:  # a bug or an unforeseen answer: said plainly, as a failure
            verdict.require(False, f"check could not complete: {type(exc).__name__}: {exc}")
        attempts.append(verdict)
        if verdict.outcome != "failed":
            break
    final = attempts[-1]
    if len(attempts) == 2 and final.outcome != "failed":
        final.note(f"first measurement failed ({attempts[0].summary()}); the re-measurement did not confirm it")
    return result_record(symptom, final, attempts, writes, time.perf_counter() - started), final
