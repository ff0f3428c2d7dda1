"""The sandbox's fault switchboard: which faults are on, and deterministic 'one in N' counters."""
from __future__ import annotations

import itertools
from collections import defaultdict

from ..catalog import load as load_catalog
from ..errors import SetupError


def validate(fault_ids: list[str]) -> list[str]:
    known = load_catalog().faults
    unknown = [f for f in fault_ids if f not in known]
    if unknown:
        raise SetupError(f"unknown fault id(s): {', '.join(unknown)}. Known faults: {', '.join(sorted(known))}")
    return fault_ids


class Faults:
    def __init__(self) -> None:
        self.active: set[str] = set()
        self._counters: dict[str, itertools.count] = defaultdict(lambda: itertools.count(1))

    def on(self, fault_id: str) -> bool:
        return fault_id in self.active

    def one_in(self, fault_id: str, n: int) -> bool:
        """True for every n-th call while the fault is on: 'one request in ten' without chance."""
        return self.on(fault_id) and next(self._counters[fault_id]) % n == 0
