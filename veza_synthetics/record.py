"""The check record: what one check found, a frozen value with its JSON form (results.json).

Schema version 3 (results.json): measurements and evidence are keyed by the step that took
them ("me.status", "forbidden.status", "stream_health.body"); probe errors ("could not
evaluate") are a list of their own, apart from the conditions ("condition false"); every time
is an ISO 8601 UTC string. Outcomes: passed, degraded, failed, no_data (nothing could be
measured: never a pass), skipped (for safety: the profile forbids what the check needs),
maintenance (a planned window of the profile covered it; `measured_outcome` keeps what it
measured). A run's enrichment (maintenance, quarantine, root cause, trend) returns a new record
with its field set (`CheckRecord.but`), never changes one.
Version 2 had `finished_at` as epoch seconds; version 1 merged measurements over each other and
folded probe errors into conditions; `upgrade` reads both for anything that looks back.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .catalog import Symptom
from .redact import PATTERNS_ONLY, Redactor
from .verdict import Verdict

SCHEMA_VERSION = 3
Json = dict[str, Any]
ENRICHMENTS = ("measured_outcome", "maintenance", "quarantined", "trend", "blocked_by", "links")  # absent unless a run adds them


def now_iso() -> str:
    """The one time format of every record: ISO 8601, UTC, to the millisecond."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class CheckRecord:
    id: str
    category: str
    variant: str  # "read-only" or "writes"
    title_fr: str
    title_en: str
    outcome: str
    summary: str
    conditions: tuple[Json, ...]
    errors: tuple[Json, ...]
    measurements: Mapping[str, Any]
    thresholds: Mapping[str, Any]
    evidence: Mapping[str, Any]
    notes: tuple[str, ...]
    not_measured: tuple[str, ...]
    attempts: tuple[Json, ...]
    runbook: Mapping[str, str]
    duration_s: float
    finished_at: str
    skipped_for_safety: bool = False
    measured_outcome: str | None = None
    maintenance: Mapping[str, str] | None = None
    quarantined: Mapping[str, str] | None = None
    trend: Mapping[str, Any] | None = None
    blocked_by: str | None = None
    links: tuple[Json, ...] | None = None  # to the platform's traces, logs and graphs (links.py)
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys of a newer schema, kept as they were read

    @property
    def flaky(self) -> bool:
        return is_flaky(self.outcome, self.attempts)

    def but(self, **changes: Any) -> CheckRecord:
        """This record with some fields changed: the enrichments' way."""
        return replace(self, **changes)

    def to_json(self) -> Json:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if k != "extra"}
        for key in ENRICHMENTS:
            if out[key] is None:
                del out[key]
        if not self.skipped_for_safety:
            del out["skipped_for_safety"]
        return {**out, **self.extra, **({"flaky": True} if self.flaky else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckRecord:
        """A record from results.json (schema 3, or an older one through `upgrade`)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        data = {k: v for k, v in data.items() if k != "flaky"}  # derived from the attempts, never stored
        tuples = {"conditions", "errors", "notes", "not_measured", "attempts", "links"}
        known: dict[str, Any] = {k: (tuple(v) if k in tuples else v) for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})


def is_flaky(outcome: str, attempts: Sequence[Mapping[str, Any]]) -> bool:
    """A failure the second measurement did not confirm: reported as flaky (JUnit's flakyFailure, the history's
    flapping), never as a plain pass."""
    return len(attempts) == 2 and attempts[0].get("outcome") == "failed" and outcome != "failed"


def _make(symptom: Symptom | None, symptom_id: str, writes: bool, redactor: Redactor, **found: Any) -> CheckRecord:
    """The one place a record is made, for a measured check and a skipped one alike (every secret masked)."""
    record = CheckRecord(id=symptom_id, category=symptom.category if symptom else "",
                         variant="writes" if writes else "read-only",
                         title_fr=symptom.title_fr if symptom else "", title_en=symptom.title_en if symptom else "",
                         runbook=symptom.runbook() if symptom else {}, finished_at=now_iso(), **found)
    return CheckRecord.from_json(redactor.data(record.to_json()))


def check_record(symptom: Symptom, final: Verdict, attempts: list[Verdict], writes: bool,
                 duration_s: float, redactor: Redactor) -> CheckRecord:
    return _make(symptom, symptom.id, writes, redactor, outcome=final.outcome, summary=final.summary(),
                 conditions=tuple({"text": c.text, "level": c.level, "threshold": c.name, "value": c.value}
                                  for c in final.conditions),
                 errors=tuple(e.as_dict() for e in final.errors), measurements=final.measurements,
                 thresholds=final.thresholds_table(), evidence=final.evidence, notes=tuple(final.notes),
                 not_measured=tuple(final.no_data),
                 attempts=tuple({"outcome": a.outcome, "summary": a.summary(), "measurements": a.measurements,
                                 "errors": [e.as_dict() for e in a.errors], "trace_id": a.trace_id} for a in attempts),
                 duration_s=round(duration_s, 3), skipped_for_safety=final.outcome == "skipped")


def skipped_record(symptom: Symptom | None, symptom_id: str, variant: str, reason: str) -> CheckRecord:
    """A check the run did not execute because the profile forbids what it needs (its catalog symptom, if
    it has one)."""
    return _make(symptom, symptom_id, variant == "writes", PATTERNS_ONLY, outcome="skipped",  # nothing measured
                 summary=f"{symptom_id}: {reason}", conditions=(), errors=(), measurements={}, thresholds={},
                 evidence={}, notes=(reason,), not_measured=(), attempts=(), duration_s=0.0, skipped_for_safety=True)


def upgrade(run: dict[str, Any]) -> dict[str, Any]:
    """A results.json of any schema version, in version 3's shape."""
    version = run.get("schema_version", 1)
    if version == SCHEMA_VERSION:
        return run
    if version > SCHEMA_VERSION:
        raise ValueError(f"results.json schema_version {version} is newer than this suite's {SCHEMA_VERSION}")
    checks = []
    for check in run.get("checks", []):
        check = dict(check)
        if version == 1:
            check.setdefault("errors", [])
            check.setdefault("title_fr", "")
            check.setdefault("title_en", "")
            if check.get("outcome") == "skipped" and not check.get("skipped_for_safety"):
                check["outcome"] = "no_data"  # version 1 wrote "skipped" for both
            check["attempts"] = [{**a, "errors": a.get("errors", [])} for a in check.get("attempts", [])]
        finished = check.get("finished_at")
        if isinstance(finished, (int, float)):  # versions 1 and 2: epoch seconds
            check["finished_at"] = dt.datetime.fromtimestamp(finished, dt.UTC).isoformat(timespec="milliseconds")
        checks.append(check)
    return {**run, "schema_version": SCHEMA_VERSION, "checks": checks, "upgraded_from": version}


def failure_text(record: CheckRecord, redactor: Redactor) -> str:
    """What pytest prints for a failed check: the verdict, the numbers, the evidence, the remedies."""
    lines = [record.summary, ""]
    if record.errors:
        lines += ["Could not evaluate:"] + [f"  {e['step']} ({e['target']}): {e['error']}" for e in record.errors]
    lines += ["Conditions:"] + [f"  [{c['level'].upper()}] {c['text']}" for c in record.conditions if c["text"]]
    if len(record.attempts) == 2:
        lines.append(f"Confirmed by a second measurement: {record.attempts[0]['summary']}")
    if record.links:
        lines += ["Find it on the platform:"] + [f"  {link['label']}: {link['url']}" for link in record.links]
    lines += ["", f"Guide: {record.runbook['section']}", "Solutions:"]
    lines += [f"  {line}" for line in record.runbook["solutions"].splitlines()]
    lines += ["Prévention:"] + [f"  {line}" for line in record.runbook["prevention"].splitlines()]
    evidence = {step: ({k: v for k, v in body.items() if k != "timeline"} if isinstance(body, dict) else body)
                for step, body in record.evidence.items()}
    lines += ["", "Measurements: " + json.dumps(record.measurements, default=str)[:1500],
              "Evidence: " + json.dumps(evidence, default=str)[:3000]]
    return redactor.text("\n".join(lines))
