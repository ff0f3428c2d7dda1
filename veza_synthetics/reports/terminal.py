"""The terminal's closing section: one line per check."""
from __future__ import annotations

from typing import Any

MARK = {"passed": "PASS", "degraded": "DEGRADED", "failed": "FAIL", "no_data": "NO DATA", "skipped": "SKIPPED"}


def lines(results: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in sorted(results, key=lambda r: (r["category"], r["id"], r["variant"])):
        suffix = " (writes)" if r["variant"] == "writes" else ""
        out.append(f"{MARK.get(r['outcome'], r['outcome']):<9} {r['id']}{suffix}: {r['summary'].split(': ', 1)[-1]}")
    return out
