"""The detection matrix: which checks each fault must fail, may fail, must leave passing.

The expectation comes from the catalog; measured outcomes from a results file: either
one run's results.json (its injected faults form one row) or the matrix test's
matrix-results.json ({fault: {check: outcome}}).
"""
from __future__ import annotations

import json
from pathlib import Path

from .catalog import load

HEALTHY = "(none)"
# Seconds a fault needs before a run can see it: those seen through Prometheus wait for its rate window
# (5 s in the sandbox) or a few 1 s scrapes.
SETTLE_S = {"perf.cpu_saturation": 7, "infra.target_down": 3, "infra.stream_down": 2, "infra.rules_missing": 1}
WORST = {"passed": 0, "skipped": 1, "no_data": 1, "degraded": 2, "failed": 3}


def expectation(fault: str, check: str) -> str:
    catalog = load()
    if fault == HEALTHY:
        return "pass"
    if check in catalog.faults[fault].must_fail:
        return "fail"
    return "may" if check in catalog.allowed_to_fail(fault) else "pass"


def outcomes_by_check(results: dict) -> dict[str, str]:
    """One outcome per check id: the worst over its variants (read-only, writes)."""
    out: dict[str, str] = {}
    for c in results["checks"]:
        if WORST.get(c["outcome"], 3) >= WORST.get(out.get(c["id"], "passed"), 0):
            out[c["id"]] = c["outcome"]
    return out


def load_measured(path: Path) -> dict[str, dict[str, str]]:
    path = path / "results.json" if path.is_dir() else path
    data = json.loads(path.read_text())
    if "checks" in data:
        return {",".join(data.get("faults") or []) or HEALTHY: outcomes_by_check(data)}
    return data


def render(results: Path | None = None) -> str:
    catalog = load()
    checks = list(catalog.symptoms)
    measured = load_measured(results) if results else {}
    mark = {"fail": "F", "may": "~", "pass": "."}
    got = {"failed": "F", "passed": ".", "degraded": "d", "skipped": "s", "no_data": "n"}
    width = max(len(f) for f in catalog.faults) + 1
    header = [" " * width + " ".join(f"{i + 1:>2}" for i in range(len(checks)))]
    rows = []
    for fault in [HEALTHY, *catalog.faults]:
        cells = []
        for check in checks:
            want = mark[expectation(fault, check)]
            if fault in measured:
                outcome = got.get(measured[fault].get(check, ""), "?")
                cells.append(f"{outcome}{'!' if (want == 'F' and outcome != 'F') or (want == '.' and outcome == 'F') else ' '}")
            else:
                cells.append(f" {want}")
        rows.append(f"{fault:<{width}}" + " ".join(cells))
    legend = [f"{i + 1:>2} {c}" for i, c in enumerate(checks)]
    key = ("expected: F must fail, ~ may fail, . must pass" if not measured else
           "measured: F failed, . passed, d degraded, s skipped, n no data, ? not run; ! = against the expectation")
    return "\n".join(header + rows + ["", key, ""] + legend)
