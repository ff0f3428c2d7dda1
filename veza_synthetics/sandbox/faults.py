"""The sandbox's fault switchboard: which faults are on, and deterministic 'one in N' counters."""
from __future__ import annotations

import itertools
from collections import defaultdict

from ..catalog import load as load_catalog


def validate(fault_ids: list[str]) -> list[str]:
    return load_catalog().validate_faults(fault_ids)


def default_sizes() -> dict[str, float]:
    """The size of the faults that have one (the catalog's); the benchmarks vary them."""
    return load_catalog().fault_sizes()


class Faults:
    def __init__(self) -> None:
        self.active: set[str] = set()
        self.once: set[str] = set()  # faults that fire for one request, then switch themselves off
        self._counters: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self.params: dict[str, float] = default_sizes()

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
