"""Checks: each takes a Verdict and the Target, measures through probes, and judges.

Registered by symptom id; `writes=True` marks the part of a check that creates data
(run only where the profile allows writes). The catalog names the modules that hold them.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from ..catalog import load as load_catalog
from ..target import Target
from ..verdict import Verdict


class Check(Protocol):
    def __call__(self, v: Verdict, target: Target, attempt: int) -> None: ...


CHECKS: dict[tuple[str, bool], Check] = {}


def check(symptom_id: str, writes: bool = False) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[(symptom_id, writes)] = fn
        return fn
    return register


def registered() -> dict[tuple[str, bool], Check]:
    """Every check, after importing the modules the catalog names."""
    for module in load_catalog().check_modules:
        importlib.import_module(module)
    return CHECKS
