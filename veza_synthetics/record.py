"""The check record: what one check found, in the shape every report writer reads.

Schema version 2 (results.json): measurements and evidence are keyed by the step that took
them ("me.status", "forbidden.status", "stream_health.body"); probe errors ("could not
evaluate") are a list of their own, apart from the conditions ("condition false").
Outcomes: passed, degraded, failed, no_data (nothing could be measured: never a pass), skipped
(for safety: the profile forbids what the check needs), maintenance (a planned window of the
profile covered it; `measured_outcome` keeps what it measured). A run may add `trend`,
`blocked_by` and `quarantined` to a check (history.py, dependencies.py, quarantine.py).
Version 1 merged measurements over each other and folded probe errors into conditions;
`upgrade` reads it for anything that looks back at older runs.
"""
from __future__ import annotations

import json
import time
from typing import Any

from . import redact
from .catalog import Symptom
from .catalog import load as load_catalog
from .verdict import Verdict

SCHEMA_VERSION = 2
Record = dict[str, Any]


def check_record(symptom: Symptom, final: Verdict, attempts: list[Verdict], writes: bool,
                 duration_s: float) -> Record:
    outcome = final.outcome
    record = {
        "id": symptom.id, "category": symptom.category, "variant": "writes" if writes else "read-only",
        "title_fr": symptom.title_fr, "title_en": symptom.title_en,
        "outcome": outcome,
        "summary": final.summary(),
        "conditions": [{"text": c.text, "level": c.level, "threshold": c.name, "value": c.value}
                       for c in final.conditions],
        "errors": [e.as_dict() for e in final.errors],
        "measurements": final.measurements, "thresholds": final.thresholds_table(), "evidence": final.evidence,
        "notes": final.notes, "not_measured": final.no_data,
        "attempts": [{"outcome": a.outcome, "summary": a.summary(), "measurements": a.measurements,
                      "errors": [e.as_dict() for e in a.errors]} for a in attempts],
        "runbook": symptom.runbook(), "duration_s": round(duration_s, 3),
        "finished_at": round(time.time(), 3),
    }
    if outcome == "skipped":
        record["skipped_for_safety"] = True
    return redact.data(record)


def skipped_record(symptom_id: str, variant: str, reason: str) -> Record:
    """A check the run did not execute because the profile forbids what it needs."""
    symptom = load_catalog().symptoms.get(symptom_id)
    return {"id": symptom_id, "category": symptom.category if symptom else "", "variant": variant,
            "title_fr": symptom.title_fr if symptom else "", "title_en": symptom.title_en if symptom else "",
            "outcome": "skipped", "summary": f"{symptom_id}: {reason}", "conditions": [], "errors": [],
            "measurements": {}, "thresholds": {}, "evidence": {}, "notes": [reason], "not_measured": [],
            "attempts": [], "runbook": symptom.runbook() if symptom else {}, "duration_s": 0.0,
            "skipped_for_safety": True}


def upgrade(run: dict[str, Any]) -> dict[str, Any]:
    """A results.json of any schema version, in version 2's shape."""
    version = run.get("schema_version", 1)
    if version == SCHEMA_VERSION:
        return run
    if version != 1:
        raise ValueError(f"results.json schema_version {version} is newer than this suite's {SCHEMA_VERSION}")
    checks = []
    for check in run.get("checks", []):
        check = dict(check)
        check.setdefault("errors", [])
        check.setdefault("title_fr", "")
        check.setdefault("title_en", "")
        if check.get("outcome") == "skipped" and not check.get("skipped_for_safety"):
            check["outcome"] = "no_data"  # version 1 wrote "skipped" for both
        for attempt in check.get("attempts", []):
            attempt.setdefault("errors", [])
        checks.append(check)
    return {**run, "schema_version": SCHEMA_VERSION, "checks": checks, "upgraded_from": version}


def failure_text(record: Record) -> str:
    """What pytest prints for a failed check: the verdict, the numbers, the evidence, the remedies."""
    lines = [record["summary"], ""]
    if record["errors"]:
        lines += ["Could not evaluate:"] + [f"  {e['step']} ({e['target']}): {e['error']}" for e in record["errors"]]
    lines += ["Conditions:"] + [f"  [{c['level'].upper()}] {c['text']}" for c in record["conditions"] if c["text"]]
    if len(record["attempts"]) == 2:
        lines.append(f"Confirmed by a second measurement: {record['attempts'][0]['summary']}")
    lines += ["", f"Guide: {record['runbook']['section']}", "Solutions:"]
    lines += [f"  {line}" for line in record["runbook"]["solutions"].splitlines()]
    lines += ["Prévention:"] + [f"  {line}" for line in record["runbook"]["prevention"].splitlines()]
    evidence = {step: ({k: v for k, v in body.items() if k != "timeline"} if isinstance(body, dict) else body)
                for step, body in record["evidence"].items()}
    lines += ["", "Measurements: " + json.dumps(record["measurements"], default=str)[:1500],
              "Evidence: " + json.dumps(evidence, default=str)[:3000]]
    return redact.text("\n".join(lines))
