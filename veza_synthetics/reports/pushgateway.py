"""Gauges to a Prometheus Pushgateway, so Prometheus keeps the history and can alert (the rules the
project ships, veza_synthetics/alerts.rules.yml): one set per check, and one per run, pushed by every
run, one that could not start included, so a night without a run is noticed."""
from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, pushadd_to_gateway

from ..hooks import RunFinished
from ..redact import PATTERNS_ONLY

RUN_JOB, CHECKS_JOB = "veza_synthetics_run", "veza_synthetics"


@pytest.hookimpl
def pytest_veza_run_finished(finished: RunFinished) -> None:
    gateway = finished.config.getoption("--pushgateway")
    failure = push(gateway, finished.result.document()) if gateway else None
    if failure:
        print(f"veza-synthetics: {failure}")


def push(gateway: str, run: dict[str, Any]) -> str | None:
    """Push the run's gauges; the reason it failed, or None."""
    registry = CollectorRegistry()
    labels = ["symptom", "variant"]
    success = Gauge("veza_synthetic_check_success", "1 passed or degraded, 0 failed", labels, registry=registry)
    degraded = Gauge("veza_synthetic_check_degraded", "1 when a warn level was crossed", labels, registry=registry)
    duration = Gauge("veza_synthetic_check_duration_seconds", "time the check took", labels, registry=registry)
    value = Gauge("veza_synthetic_check_value", "the check's key measurement", [*labels, "measurement"], registry=registry)
    no_data = Gauge("veza_synthetic_check_no_data", "1 when the check could measure nothing", labels, registry=registry)
    skipped = Gauge("veza_synthetic_check_skipped_for_safety", "1 when the profile forbids what the check needs",
                    labels, registry=registry)
    maintenance = Gauge("veza_synthetic_check_maintenance", "1 when a maintenance window covered the check",
                        labels, registry=registry)
    for r in run["checks"]:
        key = (r["id"], r["variant"])
        no_data.labels(*key).set(1 if r["outcome"] == "no_data" else 0)
        skipped.labels(*key).set(1 if r["outcome"] == "skipped" else 0)
        maintenance.labels(*key).set(1 if r["outcome"] == "maintenance" else 0)
        if r["outcome"] in ("no_data", "skipped", "maintenance"):
            continue  # neither a success nor a failure: no success series
        success.labels(*key).set(0 if r["outcome"] == "failed" else 1)
        degraded.labels(*key).set(1 if r["outcome"] == "degraded" else 0)
        duration.labels(*key).set(r["duration_s"])
        judged = [c for c in r["conditions"] if c.get("threshold")]
        if judged and isinstance(judged[0].get("value"), (int, float)):
            value.labels(*key, judged[0]["threshold"]).set(judged[0]["value"])
    try:
        push_to_gateway(gateway, job=CHECKS_JOB, registry=registry, timeout=10,
                        grouping_key={"env": run["env"], "location": run["location"]})
    except OSError as exc:
        return f"push to {PATTERNS_ONLY.text(gateway)} failed: {exc}"
    failed = sum(1 for r in run["checks"] if r["outcome"] == "failed")
    return push_run(gateway, run["env"], run["location"], started=True, failed_checks=failed)


def push_run(gateway: str, env: str, location: str, started: bool, failed_checks: int = 0) -> str | None:
    """The run's own gauges. Added to its group (POST): a run that could not start keeps the last completed
    run's timestamp, so "no completed run for 26 h" still counts from the right night."""
    registry = CollectorRegistry()
    now = time.time()
    Gauge("veza_synthetic_run_last_attempt_timestamp_seconds", "when a run last tried", registry=registry).set(now)
    Gauge("veza_synthetic_run_started", "1 when the last run could start its checks, 0 when it could not",
          registry=registry).set(1 if started else 0)
    if started:
        Gauge("veza_synthetic_run_last_completed_timestamp_seconds", "when a run last completed its checks",
              registry=registry).set(now)
        Gauge("veza_synthetic_run_failed_checks", "checks the last completed run failed",
              registry=registry).set(failed_checks)
    try:
        pushadd_to_gateway(gateway, job=RUN_JOB, registry=registry, timeout=10,
                           grouping_key={"env": env, "location": location})
    except OSError as exc:
        return f"push to {PATTERNS_ONLY.text(gateway)} failed: {exc}"
    return None
