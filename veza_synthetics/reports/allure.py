"""allure-results: epic = category, story = symptom, severity, each measurement attempt a step."""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import allure

from ..catalog import Symptom
from .charts import for_record as charts_for

FIRST_MEASUREMENT = "veza_first_measurement"  # the label a flaky check's result carries until add_retries reads it


def add_retries(results_dir: Path) -> int:
    """Allure shows a test's earlier results with the same historyId as its retries: a flaky check (a failure
    its re-measurement did not confirm) gets its first measurement written as such a result, failed, just
    before the final one. How many were added."""
    added = 0
    for path in sorted(results_dir.glob("*-result.json")):
        result = json.loads(path.read_text())
        labels = result.get("labels") or []
        first = next((label["value"] for label in labels if label.get("name") == FIRST_MEASUREMENT), None)
        if first is None:
            continue
        result["labels"] = [label for label in labels if label.get("name") != FIRST_MEASUREMENT]
        path.write_text(json.dumps(result))
        start = int(result.get("start") or 0)
        retry = {**result, "uuid": str(uuid.uuid4()), "status": "failed", "steps": [], "attachments": [],
                 "statusDetails": {"message": f"first measurement (not confirmed by the second): {first}"},
                 "start": start - 2, "stop": start - 1}
        (results_dir / f"{retry['uuid']}-result.json").write_text(json.dumps(retry))
        added += 1
    return added


def attach(record: dict[str, Any], symptom: Symptom) -> None:
    dynamic: Any = allure.dynamic  # allure-pytest ships no type hints for it
    dynamic.epic(record["category"])
    dynamic.story(f"{record['id']} — {record['title_en']}")
    dynamic.title(f"{record['id']} ({record['variant']})")
    dynamic.severity(symptom.section.severity)
    dynamic.description(record["summary"])
    if record.get("flaky"):  # both measurements are the steps below; add_retries makes the first a retry
        dynamic.tag("flaky")
        dynamic.label(FIRST_MEASUREMENT, record["attempts"][0]["summary"])
    for link in record.get("links") or []:
        dynamic.link(link["url"], name=link["label"])
    for number, attempt in enumerate(record["attempts"], 1):
        with allure.step(f"measurement {number}: {attempt['outcome']}: {attempt['summary']}"):
            allure.attach(json.dumps({"measurements": attempt["measurements"], "errors": attempt["errors"]},
                                     indent=1, default=str), "measurements", allure.attachment_type.JSON)
    allure.attach(json.dumps(record["evidence"], indent=1, default=str), "evidence", allure.attachment_type.JSON)
    rb = record["runbook"]
    allure.attach(f"{rb['section']}\n\nSolutions:\n{rb['solutions']}\n\nPrévention:\n{rb['prevention']}",
                  "runbook", allure.attachment_type.TEXT)
    for name, svg in charts_for(record):
        allure.attach(svg, name, allure.attachment_type.SVG)
