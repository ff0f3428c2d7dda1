"""The terminal's closing section: one line per check."""
from __future__ import annotations

from typing import Any

from ..outcome import Outcome

MARK = {Outcome.PASSED: "PASS", Outcome.DEGRADED: "DEGRADED", Outcome.FAILED: "FAIL", Outcome.NO_DATA: "NO DATA",
        Outcome.SKIPPED: "SKIPPED", Outcome.MAINTENANCE: "MAINT"}


def lines(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in sorted(results, key=lambda r: (r["category"], r["id"], r["variant"])):
        suffix = " (writes)" if r["variant"] == "writes" else ""
        said = f"blocked by {r['blocked_by']}" if r.get("blocked_by") else r["summary"].split(": ", 1)[-1]
        if r.get("quarantined"):
            q = r["quarantined"]
            said = f"[quarantined until {q['expires']}, owner {q['owner']}: does not fail the gate] {said}"
        mark = "FLAKY" if r.get("flaky") else MARK.get(r["outcome"], r["outcome"])
        if r.get("flaky"):
            said += f" (first measurement: {r['attempts'][0]['summary'].split(': ', 1)[-1]})"
        out.append(f"{mark:<9} {r['id']}{suffix}: {said}")
    return out


def changes(run: dict[str, Any]) -> list[str]:
    """What changed since the last run of this env and location: first, before every check's line."""
    out = []
    for check in run["checks"]:
        trend = check.get("trend") or {}
        if trend.get("state") == "new":
            out.append(f"NEW       {check['id']}: fails since this run: {check['summary'].split(': ', 1)[-1]}")
        elif trend.get("state") == "recovered":
            out.append(f"RECOVERED {check['id']}: passes again after {trend['runs']} failed run(s)")
    return out
