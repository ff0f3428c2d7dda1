"""Checks: each takes a Verdict and the Target, measures through probes, and judges.

Registered by symptom id; `writes=True` marks the part of a check that creates data
(run only where the profile allows writes); `holds=True` a check that waits on purpose
(an idle WebSocket, a session kept alive, the canary at line rate): its first attempt
runs in the background from the start of the run. The catalog names the modules.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from ..catalog import load as load_catalog
from ..probes import exporters
from ..target import Target
from ..verdict import Verdict


class Check(Protocol):
    def __call__(self, v: Verdict, target: Target, attempt: int) -> None: ...


CHECKS: dict[tuple[str, bool], Check] = {}
HOLDS: set[str] = set()  # symptom ids whose read-only check holds on purpose


def check(symptom_id: str, writes: bool = False, holds: bool = False) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[(symptom_id, writes)] = fn
        if holds and not writes:
            HOLDS.add(symptom_id)
        return fn
    return register


def registered() -> dict[tuple[str, bool], Check]:
    """Every check, after importing the modules the catalog names."""
    for module in load_catalog().check_modules:
        importlib.import_module(module)
    return CHECKS


def exporter_reaching(v: Verdict, target: Target, exporter: str, queries: dict[str, str]) -> exporters.Figures | None:
    """An exporter's figures (postgres, redis) through Prometheus, when it reaches its server: no series is
    not measured, its up gauge at 0 is a failure (the server is down as far as anything can tell)."""
    metric, server, family = exporters.REACHES[exporter]
    figures = target.exporter_figures(exporter, {"up": family["up"], **queries})
    if not v.record(f"{exporter}_exporter", figures):
        return None
    up = figures.value("up")
    if up is None:
        selector = target.profile.prometheus.selector(exporter)
        v.missing(f"{server}: no {exporter}_exporter series for {selector} in Prometheus")
        return None
    if not v.require(up == 1, f"{server} down according to {exporter}_exporter ({metric} 0)",
                     ok_text=f"{server} up according to {exporter}_exporter ({metric} 1)"):
        return None
    return figures
