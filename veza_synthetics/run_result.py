"""A finished run as values: its facts, its typed records (root cause and trend set by the run's enrichment),
the root causes and the history its trends came from. results.json is its document, made at the writers."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dependencies import RootCause
from .history import HistoryUsed
from .record import SCHEMA_VERSION, CheckRecord


@dataclass(frozen=True)
class RunFacts:
    env: str
    location: str
    started_at: str  # ISO 8601 UTC, as every time of a record
    finished_at: str
    mode: str = "run"  # or "serve": one of a prober's rounds
    allow: str = ""
    endpoints: Mapping[str, str] | None = None
    faults: tuple[str, ...] = ()
    duration_s: float | None = None
    logins_made: int | None = None
    login_budget: int | None = None
    suite_version: str = ""
    git_commit: str = ""


@dataclass(frozen=True)
class RunResult:
    facts: RunFacts
    records: tuple[CheckRecord, ...]
    root_causes: tuple[RootCause, ...] | None = None  # None: nothing failed, no dependency was probed
    dependencies: Mapping[str, str] | None = None  # each probed dependency: "up" or "down: why"
    history: HistoryUsed | None = None  # None: no trend computed (a run that stopped early)

    def document(self) -> dict[str, Any]:
        """results.json (schema 3)."""
        f = self.facts
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "suite_version": f.suite_version, "git_commit": f.git_commit,
            "env": f.env, "location": f.location, "mode": f.mode, "allow": f.allow, "endpoints": dict(f.endpoints or {}),
            "faults": list(f.faults), "started_at": f.started_at, "finished_at": f.finished_at,
            "duration_s": f.duration_s, "logins": {"made": f.logins_made, "budget": f.login_budget}}
        doc["checks"] = [r.to_json() for r in self.records]
        if self.root_causes is not None:
            doc["root_causes"] = [cause.to_json() for cause in self.root_causes]
            doc["dependencies"] = dict(self.dependencies or {})
        if self.history is not None:
            doc["history"] = self.history.to_json()
        return doc
