"""The detection matrix: which checks each fault must fail, may fail, must leave passing.

The expectation comes from the catalog; measured outcomes from a results file: either
one run's results.json (its injected faults form one row) or the matrix test's
matrix-results.json ({fault: {check: outcome}}).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .catalog import Catalog, load
from .checks import registry
from .client import Client
from .diagnosis import diagnose, start_holds
from .enrich import Context, enrich
from .outcome import rank
from .profile import Profile
from .record import CheckRecord, skipped_record
from .target import Load, Target

HEALTHY = "(none)"
TIMING_UNITS = frozenset({"ms", "s"})


def expectation(fault: str, check: str) -> str:
    catalog = load()
    if fault == HEALTHY:
        return "pass"
    if check in catalog.faults[fault].must_fail:
        return "fail"
    return "may" if check in catalog.allowed_to_fail(fault) else "pass"


def judged_in_its_sections(fault: str) -> list[str]:
    """The checks a variant's cell judges under a fault: those of the sections its must-fail checks belong
    to, less the ones it may fail (the whole matrix, every check under every fault, runs on the contract's
    shape)."""
    catalog = load()
    sections = {catalog.symptoms[c].category for c in catalog.faults[fault].must_fail}
    return sorted(c for c, symptom in catalog.symptoms.items()
                  if symptom.category in sections and expectation(fault, c) != "may")


def measure(profile: Profile, symptom_ids: Iterable[str], catalog: Catalog | None = None) -> list[CheckRecord]:
    """These checks against the profile's target, in this process, the way a run takes them (catalog ->
    checks -> verdict -> record): the holds started first in the background, every failure confirmed,
    one record per check and variant, the writes variant skipped where the profile forbids writes."""
    return measure_with_load(profile, symptom_ids, catalog)[0]


def measure_with_load(profile: Profile, symptom_ids: Iterable[str], catalog: Catalog | None = None,
                      client: Client | None = None, context: Context | None = None,
                      retried: bool = False) -> tuple[list[CheckRecord], Load]:
    """measure(), and what it cost the platform (serve counts it), on `client` where one outlives the run; each
    record enriched as a run's are (enrich.py, with `context`: serve's quarantine). `retried`: a failure is
    confirmed by serve's retry round, not measured twice now."""
    context = context or Context(profile, profile.redactor())
    ids, records = sorted(set(symptom_ids)), []
    with Target(profile, catalog, client) as target:
        checks = registry(target.catalog).checks
        start_holds(target, set(ids))
        for sid in ids:
            for writes in (False, True):
                if (sid, writes) not in checks:
                    continue
                if writes and profile.writes_skipped:
                    skipped = skipped_record(target.catalog.symptoms.get(sid), sid, "writes", profile.writes_skipped)
                    records.append(enrich(skipped, context))
                    continue
                records.append(enrich(diagnose(sid, target, writes, retried)[0], context))
    return records, target.load()


def worst_by_check(records: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """One record per check id: the worst over its variants (read-only, writes)."""
    out: dict[str, Mapping[str, Any]] = {}
    for c in records:
        if c["id"] not in out or rank(c["outcome"]) >= rank(out[c["id"]]["outcome"]):
            out[c["id"]] = c
    return out


def outcomes_by_check(results: Mapping[str, Any]) -> dict[str, str]:
    return {sid: record["outcome"] for sid, record in worst_by_check(results["checks"]).items()}


def meets(want: str, record: Mapping[str, Any]) -> bool:
    """Whether a check's record is what its matrix cell expects: "fail" is failed; "pass" is passed, or
    degraded by latency warning levels alone. The matrix proves detection at the fail level; a warning
    level of time is crossed by the test machine's own load (a 50 ms chat warning measured 62 ms on a
    2-core CI runner), and how far under its thresholds the sandbox runs is a benchmark's figure."""
    if want == "fail":
        return bool(record["outcome"] == "failed")
    if record["outcome"] == "passed":
        return True
    crossed = [c for c in record["conditions"] if c["level"] != "passed"]
    return record["outcome"] == "degraded" and not record["errors"] and bool(crossed) and all(
        c["level"] == "degraded" and record["thresholds"].get(c["threshold"], {}).get("unit") in TIMING_UNITS
        for c in crossed)


def load_measured(path: Path) -> dict[str, dict[str, str]]:
    path = path / "results.json" if path.is_dir() else path
    data: dict[str, Any] = json.loads(path.read_text())
    if "checks" in data:
        return {",".join(data.get("faults") or []) or HEALTHY: outcomes_by_check(data)}
    return {fault: dict(row) for fault, row in data.items()}


def render(results: Path | None = None) -> str:
    catalog = load()
    checks = list(catalog.symptoms)
    measured = load_measured(results) if results else {}
    mark = {"fail": "F", "may": "~", "pass": "."}  # nosec B105  # matrix marks, no password
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
