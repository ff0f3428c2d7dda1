"""Several locations, one verdict: runs of the same env from several places merged by quorum.

A check fails when at least `quorum` locations fail it; when some fail but fewer, it is a
partial outage (degraded): the platform is down for some users, or one runner's network is.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .errors import SetupError
from .outcome import rank
from .record import upgrade


def read(paths: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for path in paths:
        file = path / "results.json" if path.is_dir() else path
        try:
            runs.append(upgrade(json.loads(file.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            raise SetupError(f"merge: {file} is not a readable results.json ({exc})") from None
    envs = {run["env"] for run in runs}
    if len(envs) != 1:
        raise SetupError(f"merge: runs of one env only, these are of {', '.join(sorted(envs))}")
    locations = [run["location"] for run in runs]
    if len(set(locations)) != len(locations):
        raise SetupError(f"merge: one run per location, got {', '.join(locations)}")
    return runs


def merge(runs: list[dict[str, Any]], quorum: int = 0) -> dict[str, Any]:
    """The merged run; `quorum` 0 means a majority of the locations."""
    n = len(runs)
    need = quorum or n // 2 + 1
    if not 1 <= need <= n:
        raise SetupError(f"merge: quorum {quorum} for {n} location(s): between 1 and {n}")
    by_check: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for run in runs:
        for check in run["checks"]:
            by_check.setdefault((check["id"], check["variant"]), {})[run["location"]] = check
    checks = []
    for (_sid, _variant), seen in sorted(by_check.items()):
        failing = sorted(loc for loc, c in seen.items() if c["outcome"] == "failed")
        merged = copy.deepcopy(next(iter(seen.values())))
        merged["per_location"] = {loc: {"outcome": c["outcome"], "summary": c["summary"]} for loc, c in seen.items()}
        where = f"{len(failing)} of {n} location(s)"
        if len(failing) >= need:
            first = seen[failing[0]]
            merged.update(outcome="failed", summary=f"{first['summary']} [failed in {where}: {', '.join(failing)}; "
                                                    f"quorum {need}]")
        elif failing:
            merged.update(outcome="degraded",
                          summary=f"{merged['id']}: partial outage: failed in {where} ({', '.join(failing)}), "
                                  f"under the quorum of {need}: {seen[failing[0]]['summary'].split(': ', 1)[-1]}")
        else:
            worst = max(seen.values(), key=lambda c: rank(c["outcome"]))
            merged.update(outcome=worst["outcome"], summary=worst["summary"])
        checks.append(merged)
    first = runs[0]
    return {**{k: v for k, v in first.items() if k not in ("checks", "location", "history", "root_causes")},
            "location": "+".join(sorted(r["location"] for r in runs)), "quorum": need,
            "locations": {r["location"]: r.get("finished_at", "") for r in runs},
            "started_at": min(r["started_at"] for r in runs), "checks": checks}
