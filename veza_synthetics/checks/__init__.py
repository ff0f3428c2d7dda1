"""Checks: each takes a Verdict and the Target, measures through probes, and judges.

Registered by symptom id; `writes=True` marks the part of a check that creates data
(run only where the profile allows writes).
"""
from __future__ import annotations

from typing import Callable

CHECKS: dict[tuple[str, bool], Callable] = {}


def check(symptom_id: str, writes: bool = False):
    def register(fn: Callable) -> Callable:
        CHECKS[(symptom_id, writes)] = fn
        return fn
    return register


from . import auth, database, health, performance, streaming, websocket  # noqa: E402,F401  (registration)
