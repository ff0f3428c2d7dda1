"""The sandbox's fault switchboard: which faults are on, and deterministic 'one in N' counters."""
from __future__ import annotations

import itertools
from collections import defaultdict

from ..catalog import load as load_catalog
from ..errors import SetupError


# The size of the faults that have one (catalog values); the benchmarks vary them.
DEFAULT_PARAMS = {"perf.latency": 0.4, "ws.latency": 0.3, "stream.throttle": 0.7}


def validate(fault_ids: list[str]) -> list[str]:
    known = load_catalog().faults
    unknown = [f for f in fault_ids if f not in known]
    if unknown:
        raise SetupError(f"unknown fault id(s): {', '.join(unknown)}. Known faults: {', '.join(sorted(known))}")
    return fault_ids


class Faults:
    def __init__(self) -> None:
        self.active: set[str] = set()
        self.once: set[str] = set()  # faults that fire for one request, then switch themselves off
        self._counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))
        self.params: dict[str, float] = dict(DEFAULT_PARAMS)

    def param(self, fault_id: str) -> float:
        return self.params[fault_id]

    def on(self, fault_id: str) -> bool:
        if fault_id in self.once:
            self.once.discard(fault_id)
            self.active.discard(fault_id)
            return True
        return fault_id in self.active

    def one_in(self, fault_id: str, n: int) -> bool:
        """True for every n-th call while the fault is on: 'one request in ten' without chance."""
        return self.on(fault_id) and next(self._counters[fault_id]) % n == 0
