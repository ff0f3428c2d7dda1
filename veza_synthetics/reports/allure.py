"""allure-results: epic = category, story = symptom, severity, each measurement attempt a step."""
from __future__ import annotations

import json
from typing import Any

import allure

from ..catalog import Symptom
from .charts import for_record as charts_for


def attach(record: dict[str, Any], symptom: Symptom) -> None:
    dynamic: Any = allure.dynamic  # allure-pytest ships no type hints for it
    dynamic.epic(record["category"])
    dynamic.story(f"{record['id']} — {record['title_en']}")
    dynamic.title(f"{record['id']} ({record['variant']})")
    dynamic.severity(symptom.section.severity)
    dynamic.description(record["summary"])
    if record.get("flaky"):  # both measurements are the steps below
        dynamic.tag("flaky")
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
