"""Checks: each takes a Verdict and the Target, measures through probes, and judges.

Each is marked @check(symptom id); registry() reads the marks from the modules the catalog
names (no table filled by imports). `writes=True` marks the part of a check that creates data
(run only where the profile allows writes); `holds=True` a check that waits on purpose
(an idle WebSocket, a session kept alive, the canary at line rate): its first attempt
runs in the background from the start of the run. The catalog names the modules.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from ..catalog import Catalog
from ..catalog import load as load_catalog
from ..errors import SetupError
from ..probes import exporters
from ..target import Target
from ..verdict import Verdict


class Check(Protocol):
    def __call__(self, v: Verdict, target: Target, attempt: int) -> None: ...


@dataclass(frozen=True)
class Mark:
    """What @check says of a function: the symptom it checks, whether it writes, whether it holds."""
    symptom_id: str
    writes: bool
    holds: bool


MARK = "veza_check"  # the attribute @check sets on the function


def check(symptom_id: str, writes: bool = False, holds: bool = False) -> Callable[[Check], Check]:
    """Mark a function as the check of a catalog symptom; registry() finds it in the catalog's modules."""
    def mark(fn: Check) -> Check:
        vars(fn)[MARK] = Mark(symptom_id, writes, holds)
        return fn
    return mark


@dataclass(frozen=True)
class Registry:
    """Every check of the catalog's modules, by (symptom id, writes), and the ids whose check holds on purpose."""
    checks: Mapping[tuple[str, bool], Check]
    holds: frozenset[str]


def registry(catalog: Catalog | None = None) -> Registry:
    """The checks marked in the modules the catalog names (a team's own included), read from the modules
    themselves: no table filled as a side effect of imports."""
    return _registry((catalog or load_catalog()).check_modules)


@cache
def _registry(modules: tuple[str, ...]) -> Registry:
    checks: dict[tuple[str, bool], Check] = {}
    holds: set[str] = set()
    for name in modules:
        for member in vars(importlib.import_module(name)).values():
            mark = vars(member).get(MARK) if inspect.isfunction(member) else None
            if not isinstance(mark, Mark):
                continue
            key = (mark.symptom_id, mark.writes)
            if checks.get(key, member) is not member:
                raise SetupError(f"two checks for {mark.symptom_id}{' (writes)' if mark.writes else ''}: "
                                 f"{_name(checks[key])} and {_name(member)}")
            checks[key] = member
            if mark.holds and not mark.writes:
                holds.add(mark.symptom_id)
    return Registry(checks, frozenset(holds))


def _name(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


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
