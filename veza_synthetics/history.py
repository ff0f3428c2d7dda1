"""Run-to-run memory: the past results.json of the same env and location, and each check's trend.

History lives in a directory (`--history DIR`): DIR/<env>/<location>/<UTC>.json, the last
`keep` runs each. A file that is not a results.json of this env and location is named and
skipped, never fatal. A check's trend compares its outcome now with the same check's past:
NEW (fails now, did not last time), STILL FAILING (since when, how many runs), RECOVERED,
FLAPPING (at least `flap_changes` changes between failing and not in the last `flap_window`
runs), STABLE. Runs where the check measured nothing (no data, skipped) do not count.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from .profile import History as Settings
from .record import CheckRecord, is_flaky, upgrade

JUDGED = ("passed", "degraded", "failed")
STATES = ("new", "still_failing", "recovered", "flapping", "stable")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
ALLURE_HISTORY = "allure-history.jsonl"  # Allure 3's own history (its historyPath), kept beside these runs


@dataclass
class Past:
    runs: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    skipped: list[str] = field(default_factory=list)          # "file: why", for the run's notes


def folder(root: Path, env: str, location: str) -> Path:
    return root / SAFE_NAME.sub("_", env) / SAFE_NAME.sub("_", location)


def load(root: Path, env: str, location: str) -> Past:
    """The past runs of this env and location, oldest first; anything else in their folder is skipped."""
    history = Past()
    where = folder(root, env, location)
    if not where.is_dir():
        return history
    for path in sorted(where.iterdir()):
        if path.name == ALLURE_HISTORY:
            continue
        if path.suffix != ".json":
            history.skipped.append(f"{path.name}: not a results.json")
            continue
        try:
            run = upgrade(json.loads(path.read_text(encoding="utf-8")))
            if (run.get("env"), run.get("location")) != (env, location) or not isinstance(run.get("checks"), list):
                raise ValueError(f"a run of {run.get('env')!r} from {run.get('location')!r}, not this one")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # corrupt or foreign
            history.skipped.append(f"{path.name}: {exc.__class__.__name__}: {str(exc)[:120]}")
            continue
        history.runs.append(run)
    history.runs.sort(key=lambda r: str(r.get("started_at", "")))
    return history


def add(root: Path, run: dict[str, Any], keep: int) -> Path:
    """Keep this run in the history; the oldest beyond `keep` go."""
    where = folder(root, run["env"], run["location"])
    where.mkdir(parents=True, exist_ok=True)
    stamp = re.sub(r"[^0-9T.]", "", str(run["started_at"]).split("+")[0])  # to the microsecond: runs side by side
    path = where / f"{stamp}Z.json"
    path.write_text(json.dumps(run, indent=1), encoding="utf-8")
    for old in sorted(p for p in where.glob("*.json"))[:-keep] if keep > 0 else []:
        old.unlink()
    return path


def _outcomes(runs: list[dict[str, Any]], check_id: str, variant: str) -> list[tuple[str, str, bool]]:
    """(outcome, started_at, flaky) of one check in these runs, judged outcomes only, oldest first."""
    out = []
    for run in runs:
        for check in run["checks"]:
            if check.get("id") == check_id and check.get("variant") == variant and check.get("outcome") in JUDGED:
                out.append((check["outcome"], str(run.get("started_at", "")), _flaky(check)))
    return out


def _flaky(check: Mapping[str, Any]) -> bool:
    return is_flaky(check["outcome"], check.get("attempts") or [])


def trend(check: Mapping[str, Any], started_at: str, past: list[dict[str, Any]], settings: Settings) -> dict[str, Any] | None:
    """The check's trend against the past runs, or None when it measured nothing now. A flaky run (a failure
    its re-measurement did not confirm) counts its unconfirmed failure towards flapping."""
    if check["outcome"] not in JUDGED:
        return None
    seq = [*_outcomes(past, check["id"], check["variant"]), (check["outcome"], started_at, _flaky(check))]
    failing = [outcome == "failed" for outcome, _, _ in seq]
    window = seq[-settings.flap_window:]
    measured = [f for outcome, _, flaky in window for f in ([True] if flaky else []) + [outcome == "failed"]]
    flips = sum(1 for a, b in pairwise(measured) if a != b)
    streak = 1
    while streak < len(failing) and failing[-streak - 1] == failing[-1]:
        streak += 1
    since = seq[-streak][1]
    if flips >= settings.flap_changes:
        return {"state": "flapping", "since": window[0][1], "runs": len(window), "changes": flips}
    if failing[-1]:
        state = "new" if streak == 1 else "still_failing"
        return {"state": state, "since": since, "runs": streak}
    if len(failing) > 1 and failing[-2]:
        ended = 1
        while ended < len(failing) - 1 and failing[-ended - 2]:
            ended += 1
        return {"state": "recovered", "since": started_at, "runs": ended}  # runs: how long it had failed
    return {"state": "stable", "since": since, "runs": streak}


@dataclass(frozen=True)
class HistoryUsed:
    """What a run's trends were computed from: how many past runs, and the files skipped (named, with why)."""
    runs: int
    skipped: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "skipped": list(self.skipped)}


def annotate(records: Sequence[CheckRecord], started_at: str, history: Past,
             settings: Settings) -> tuple[tuple[CheckRecord, ...], HistoryUsed]:
    """Every record with its trend (new records: those given are not changed), and the history it used."""
    annotated = []
    for record in records:
        found = trend({"id": record.id, "variant": record.variant, "outcome": record.outcome,
                       "attempts": record.attempts}, started_at, history.runs, settings)
        annotated.append(record.but(trend=found) if found is not None else record)
    return tuple(annotated), HistoryUsed(len(history.runs), tuple(history.skipped))


def changes(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The checks whose trend is news: new and recovered (what the nightly opens and comments on)."""
    return {state: [c for c in run["checks"] if c.get("trend", {}).get("state") == state]
            for state in ("new", "recovered")}


def notification(run: dict[str, Any]) -> dict[str, str]:
    """What the nightly says about this run: open an issue on a new failure, comment when a check
    recovers, stay quiet when nothing changed (a check still failing is already in its issue)."""
    news = changes(run)
    day, where = str(run.get("started_at", ""))[:10], f"{run['env']} ({run['location']})"
    if news["new"]:
        ids = ", ".join(c["id"] for c in news["new"])
        return {"action": "open", "title": f"Synthetics {where} {day}: new failure {ids}"}
    if news["recovered"]:
        ids = ", ".join(c["id"] for c in news["recovered"])
        return {"action": "comment", "title": f"Synthetics {where} {day}: recovered {ids}"}
    return {"action": "quiet", "title": ""}
