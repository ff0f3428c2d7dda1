"""report.html (pytest-html, self-contained): each check's block, its charts, and the run's header table."""
from __future__ import annotations

import datetime as dt
import html
import json
import subprocess
from pathlib import Path
from typing import Any

from pytest_html import extras as html_extras

from .. import __version__, redact
from ..dependencies import headline
from ..profile import Profile
from .charts import for_record as charts_for

COLOUR = {"passed": "#1a7f37", "degraded": "#9a6700", "failed": "#cf222e"}


def extras(record: dict[str, Any]) -> list[Any]:
    """The check's block and charts, as pytest-html extras for the test's row."""
    return [html_extras.html(block(record) + "".join(svg for _, svg in charts_for(record)))]


def block(record: dict[str, Any]) -> str:
    esc = html.escape
    colour = COLOUR.get(record["outcome"], "#57606a")
    errors = "".join(f"<li><b>could not evaluate</b> {esc(e['step'])} ({esc(e['target'])}): {esc(e['error'])}</li>"
                     for e in record["errors"])
    conditions = "".join(f"<li><b>{esc(c['level'])}</b> {esc(c['text'])}</li>" for c in record["conditions"]
                         if c["text"])
    evidence = esc(json.dumps(record["evidence"], indent=1, default=str)[:6000])
    attempts = record.get("attempts") or []
    both = "".join(f"<li>measurement {number}: <b>{esc(a['outcome'])}</b> {esc(a['summary'])}</li>"
                   for number, a in enumerate(attempts, 1))
    measured = f"<h4>Measurements</h4><ul>{both}</ul>" if len(attempts) > 1 else ""  # a failure re-measured
    found = "".join(f"<li><a href='{esc(link['url'], quote=True)}'>{esc(link['label'])}</a> ({esc(link['kind'])})</li>"
                    for link in record.get("links") or [])
    links = f"<h4>Find it on the platform</h4><ul>{found}</ul>" if found else ""
    flaky = ("<p><b>FLAKY</b>: the first measurement failed and the re-measurement did not confirm it</p>"
             if record.get("flaky") else "")
    rb = record["runbook"]
    return redact.text(
        f"<div class='veza'><h3 style='color:{colour}'>{esc(record['summary'])}</h3>"
        f"<p><i>{esc(record.get('title_fr', ''))}</i> — {esc(record.get('title_en', ''))}</p>"
        f"<ul>{errors}{conditions}</ul>{flaky}{measured}{links}"
        f"<h4>Solutions ({esc(rb.get('section', ''))})</h4><pre>{esc(rb.get('solutions', ''))}</pre>"
        f"<h4>Prévention</h4><pre>{esc(rb.get('prevention', ''))}</pre>"
        f"<details><summary>Measurements and evidence (by step)</summary><pre>"
        f"{esc(json.dumps(record['measurements'], indent=1, default=str))}</pre><pre>{evidence}</pre></details></div>")


def metadata(profile: Profile, location: str, faults: list[str], started_at: dt.datetime) -> dict[str, Any]:
    """The HTML report's Environment table: what ran, where, against what (no secrets)."""
    return {"Environment": f"{profile.name} ({profile.allow})", "Location": location,
            "Endpoints": redact.data(profile.endpoints()), "Faults injected": ", ".join(faults) or "none",
            "Started": started_at.isoformat(timespec="seconds"),
            "Suite": f"veza-synthetics {__version__} ({git_commit() or 'no git'})"}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def changes(run: dict[str, Any]) -> list[str]:
    """The report's first lines: the root causes, then the checks that are NEW and RECOVERED since the last run."""
    causes = [f"<p><b>{html.escape(redact.text(line))}</b></p>" for line in headline(run)]
    return [*causes, *_news(run), '<p><a href="../history.html">History of this env and location</a> '
                                  "(every check's last runs, pass rate, time to recover)</p>"]


def _news(run: dict[str, Any]) -> list[str]:
    news = [c for c in run["checks"] if (c.get("trend") or {}).get("state") in ("new", "recovered")]
    if not news:
        runs = (run.get("history") or {}).get("runs", 0)
        return [f"<p>Since the last run: nothing changed ({runs} past run(s) of this env and location).</p>"]
    items = "".join(f"<li><b>{html.escape(c['trend']['state'].upper())}</b> {html.escape(c['id'])}: "
                    f"{html.escape(redact.text(c['summary'].split(': ', 1)[-1]))}</li>" for c in news)
    return [f"<p>Since the last run:</p><ul>{items}</ul>"]
