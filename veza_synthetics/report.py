"""The run's files: reports/<UTC>-<env>/ with report.html, junit.xml, results.json, summary.md.

Everything written passes through redact: no secret, token or signature leaves the run.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from . import __version__, redact
from .charts import for_record as charts_for
from .catalog import Symptom
from .verdict import Verdict

SCHEMA_VERSION = 1
MARK = {"passed": "PASS", "degraded": "DEGRADED", "failed": "FAIL", "no_data": "NO DATA", "skipped": "SKIPPED",
        "error": "ERROR"}


def prepare_dir(config, env_name: str) -> Path:
    root = Path(config.getoption("--reports-dir"))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = root / f"{stamp}-{env_name}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
        config.option.htmlpath = str(folder / "report.html")
        config.option.self_contained_html = True
    if not getattr(config.option, "xmlpath", None):
        config.option.xmlpath = str(folder / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(folder / "allure-results")
    _prune(root, config.getoption("--keep-reports"))
    return folder


def _prune(root: Path, keep: int) -> None:
    runs = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and p.name[:8].isdigit())
    for old in runs[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def result_record(symptom: Symptom, final: Verdict, attempts: list[Verdict], writes: bool, duration_s: float) -> dict:
    outcome = final.outcome
    record = {
        "id": symptom.id, "category": symptom.category, "variant": "writes" if writes else "read-only",
        "title_fr": symptom.title_fr, "title_en": symptom.title_en,
        "outcome": "skipped" if outcome == "no_data" else outcome,
        "summary": final.summary(), "conditions": [{"text": c.text, "level": c.level, "threshold": c.name} for c in final.conditions],
        "measurements": final.measurements, "thresholds": final.thresholds_table(), "evidence": final.evidence,
        "notes": final.notes, "not_measured": final.no_data,
        "attempts": [{"outcome": a.outcome, "summary": a.summary(), "measurements": a.measurements} for a in attempts],
        "runbook": symptom.runbook(), "duration_s": round(duration_s, 3),
        "finished_at": round(time.time(), 3),
    }
    return redact.data(record)


def skipped_record(symptom_id: str, nodeid: str, reason: str) -> dict:
    from .catalog import load
    symptom = load().symptoms.get(symptom_id)
    return {"id": symptom_id, "category": symptom.category if symptom else "", "variant": "writes",
            "outcome": "skipped", "summary": f"{symptom_id}: {reason}", "conditions": [], "measurements": {},
            "thresholds": {}, "evidence": {}, "notes": [reason], "not_measured": [], "attempts": [],
            "runbook": symptom.runbook() if symptom else {}, "duration_s": 0.0, "skipped_for_safety": True,
            "nodeid": nodeid}


def failure_text(record: dict) -> str:
    """What pytest prints for a failed check: the verdict, the numbers, the evidence, the remedies."""
    lines = [record["summary"], "", "Conditions:"]
    lines += [f"  [{c['level'].upper()}] {c['text']}" for c in record["conditions"]
              if c["text"]]
    if len(record["attempts"]) == 2:
        lines.append(f"Confirmed by a second measurement: {record['attempts'][0]['summary']}")
    lines += ["", f"Guide: {record['runbook']['section']}", "Solutions:"]
    lines += [f"  {line}" for line in record["runbook"]["solutions"].splitlines()]
    lines += ["Prévention:"] + [f"  {line}" for line in record["runbook"]["prevention"].splitlines()]
    evidence = {k: v for k, v in record["evidence"].items() if k != "stream" or not isinstance(v, dict)}
    stream = record["evidence"].get("stream")
    if isinstance(stream, dict):
        evidence["stream"] = {k: v for k, v in stream.items() if k != "timeline"}
    lines += ["", "Measurements: " + json.dumps(record["measurements"], default=str)[:1500],
              "Evidence: " + json.dumps(evidence, default=str)[:3000]]
    return redact.text("\n".join(lines))


def attach(request, record: dict, symptom: Symptom) -> None:
    """The verdict, measurements, evidence, charts and remedies: into pytest-html extras and Allure."""
    import allure
    import pytest_html
    charts = charts_for(record)
    request.node.veza_extras = [pytest_html.extras.html(html_block(record) + "".join(svg for _, svg in charts))]
    allure.dynamic.epic(record["category"])
    allure.dynamic.story(f"{record['id']} — {record['title_en']}")
    allure.dynamic.title(f"{record['id']} ({record['variant']})")
    allure.dynamic.severity(symptom.section.severity)
    allure.dynamic.description(record["summary"])
    for number, attempt in enumerate(record["attempts"], 1):
        with allure.step(f"measurement {number}: {attempt['outcome']}: {attempt['summary']}"):
            allure.attach(json.dumps(attempt["measurements"], indent=1, default=str), "measurements",
                          allure.attachment_type.JSON)
    allure.attach(json.dumps(record["evidence"], indent=1, default=str), "evidence", allure.attachment_type.JSON)
    allure.attach(f"{record['runbook']['section']}\n\nSolutions:\n{record['runbook']['solutions']}\n\n"
                  f"Prévention:\n{record['runbook']['prevention']}", "runbook", allure.attachment_type.TEXT)
    for name, svg in charts:
        allure.attach(svg, name, allure.attachment_type.SVG)


def html_block(record: dict) -> str:
    esc = html.escape
    colour = {"passed": "#1a7f37", "degraded": "#9a6700", "failed": "#cf222e"}.get(record["outcome"], "#57606a")
    conditions = "".join(f"<li><b>{esc(c['level'])}</b> {esc(c['text'])}</li>" for c in record["conditions"]
                         if c["text"])
    evidence = esc(json.dumps({k: v for k, v in record["evidence"].items()}, indent=1, default=str)[:6000])
    rb = record["runbook"]
    return redact.text(
        f"<div class='veza'><h3 style='color:{colour}'>{esc(record['summary'])}</h3>"
        f"<p><i>{esc(record.get('title_fr', ''))}</i> — {esc(record.get('title_en', ''))}</p>"
        f"<ul>{conditions}</ul>"
        f"<h4>Solutions ({esc(rb.get('section', ''))})</h4><pre>{esc(rb.get('solutions', ''))}</pre>"
        f"<h4>Prévention</h4><pre>{esc(rb.get('prevention', ''))}</pre>"
        f"<details><summary>Measurements and evidence</summary><pre>"
        f"{esc(json.dumps(record['measurements'], indent=1, default=str))}</pre><pre>{evidence}</pre></details></div>")


def html_metadata(state) -> dict:
    """The HTML report's Environment table: what ran, where, against what (no secrets)."""
    p = state.profile
    return {"Environment": f"{p.name} ({p['allow']})", "Location": state.location,
            "Endpoints": redact.data(p.endpoints()), "Faults injected": ", ".join(state.faults) or "none",
            "Started": dt.datetime.fromtimestamp(state.started_at, dt.timezone.utc).isoformat(timespec="seconds"),
            "Suite": f"veza-synthetics {__version__} ({_git_commit() or 'no git'})"}


def terminal_lines(results: list[dict]) -> list[str]:
    lines = []
    for r in sorted(results, key=lambda r: (r["category"], r["id"], r["variant"])):
        suffix = " (writes)" if r["variant"] == "writes" else ""
        lines.append(f"{MARK.get(r['outcome'], r['outcome']):<9} {r['id']}{suffix}: {r['summary'].split(': ', 1)[-1]}")
    return lines


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def write_all(state) -> None:
    folder: Path = state.report_dir
    finished = dt.datetime.now(dt.timezone.utc)
    started = dt.datetime.fromtimestamp(state.started_at, dt.timezone.utc)
    run = {
        "schema_version": SCHEMA_VERSION, "suite_version": __version__, "git_commit": _git_commit(),
        "env": state.profile.name, "location": state.location, "allow": state.profile["allow"],
        "endpoints": state.profile.endpoints(), "faults": state.faults,
        "started_at": started.isoformat(), "finished_at": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 2),
        "checks": sorted(state.results, key=lambda r: (r["category"], r["id"], r["variant"])),
    }
    run = redact.data(run)
    (folder / "results.json").write_text(json.dumps(run, indent=2, ensure_ascii=False, default=str))
    (folder / "summary.md").write_text(redact.text(summary_markdown(run, folder)))
    latest = folder.parent / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink() if latest.is_symlink() else shutil.rmtree(latest)
    latest.symlink_to(folder.name)


def summary_markdown(run: dict, folder: Path) -> str:
    checks = run["checks"]
    failed = [c for c in checks if c["outcome"] == "failed"]
    degraded = [c for c in checks if c["outcome"] == "degraded"]
    counts = {k: sum(1 for c in checks if c["outcome"] == k) for k in ("passed", "degraded", "failed", "skipped")}
    lines = [f"# Veza synthetic checks: {run['env']} ({run['location']}), {run['started_at'][:19]}Z",
             "", " · ".join(f"{n} {k}" for k, n in counts.items()),
             f"Faults injected: {', '.join(run['faults']) or 'none'}", ""]
    if failed or degraded:
        lines.append("## What is wrong")
        for c in failed + degraded:
            lines += [f"- **{c['outcome'].upper()}** `{c['id']}` ({c['title_fr']}): {c['summary'].split(': ', 1)[-1]}",
                      f"  - First remedy: {c['runbook']['solutions'].splitlines()[0]}"]
        lines.append("")
    lines += ["## All checks", "", "| check | outcome | verdict |", "|---|---|---|"]
    lines += [f"| {c['id']}{' (writes)' if c['variant'] == 'writes' else ''} | {c['outcome']} | "
              f"{c['summary'].split(': ', 1)[-1].replace('|', '/')} |" for c in checks]
    lines += ["", f"Full report: {folder / 'report.html'}"]
    return "\n".join(lines) + "\n"


def push(gateway: str, state) -> None:
    """One gauge set per check to a Pushgateway, so Prometheus keeps the history and can alert."""
    from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
    registry = CollectorRegistry()
    labels = ["symptom", "variant"]
    success = Gauge("veza_synthetic_check_success", "1 passed or degraded, 0 failed", labels, registry=registry)
    degraded = Gauge("veza_synthetic_check_degraded", "1 when a warn level was crossed", labels, registry=registry)
    duration = Gauge("veza_synthetic_check_duration_seconds", "time the check took", labels, registry=registry)
    value = Gauge("veza_synthetic_check_value", "the check's key measurement", [*labels, "measurement"], registry=registry)
    for r in state.results:
        if r["outcome"] == "skipped":
            continue
        key = (r["id"], r["variant"])
        success.labels(*key).set(0 if r["outcome"] == "failed" else 1)
        degraded.labels(*key).set(1 if r["outcome"] == "degraded" else 0)
        duration.labels(*key).set(r["duration_s"])
        judged = [c for c in r["conditions"] if c.get("threshold")]
        if judged and isinstance(r["measurements"].get(judged[0]["threshold"]), (int, float)):
            value.labels(*key, judged[0]["threshold"]).set(r["measurements"][judged[0]["threshold"]])
    try:
        push_to_gateway(gateway, job="veza_synthetics", registry=registry, timeout=10,
                        grouping_key={"env": state.profile.name, "location": state.location})
    except OSError as exc:
        print(f"veza-synthetics: push to {redact.text(gateway)} failed: {exc}")


def failed_ids(results_path: str) -> str:
    run = json.loads(Path(results_path).read_text())
    return ", ".join(sorted({c["id"] for c in run["checks"] if c["outcome"] == "failed"})) or "none"


if __name__ == "__main__":  # `python -m veza_synthetics.report failed-ids results.json` (the nightly's issue title)
    import sys
    if len(sys.argv) != 3 or sys.argv[1] != "failed-ids":
        raise SystemExit("usage: python -m veza_synthetics.report failed-ids RESULTS_JSON")
    print(failed_ids(sys.argv[2]))
