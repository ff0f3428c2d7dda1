"""report.html (pytest-html, self-contained): each check's block, its charts, and the run's header table."""
from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from pytest_html import extras as html_extras

from .. import __version__, git_commit
from ..catalog import Catalog
from ..dependencies import headline
from ..outcome import colour as outcome_colour
from ..profile import Profile
from ..redact import Redactor
from .charts import for_record as charts_for

# Read at a glance, on a laptop or a phone: long texts wrap, tables fit the page, nothing scrolls sideways.
STYLE = """<style>
body { min-width: 0; max-width: 100%; }  /* pytest-html sets 800 px: a phone scrolled sideways */
#results-table { table-layout: fixed; width: 100%; }
#results-table td, #results-table th { overflow-wrap: anywhere; word-break: break-word; }
.veza pre, .veza td, .veza li { white-space: pre-wrap; overflow-wrap: anywhere; }
.veza table { border-collapse: collapse; width: 100%; table-layout: fixed; }
.veza th, .veza td { border: 1px solid #d0d7de; padding: 2px 6px; text-align: left; vertical-align: top; }
.veza th { width: 30%; }
.col-verdict { width: 40%; }
#environment td { overflow-wrap: anywhere; }
svg { max-width: 100%; height: auto; }
.controls, .filters, .collapse { flex-wrap: wrap; gap: 2px 8px; }
.summary__data { flex: 1 1 auto; max-width: 100%; }
.logwrapper, .log { max-width: 100%; box-sizing: border-box; }
.log { white-space: pre-wrap; overflow-wrap: anywhere; }
#results-table tr, #results-table td { max-width: 100%; box-sizing: border-box; }
@media (max-width: 700px) {  /* a phone: the check's own columns; the test id, duration and links hidden */
  #results-table thead th:nth-child(n+6), #results-table tr.collapsible > td:nth-child(n+6) { display: none; }
  #results-table thead th:nth-child(1) { width: 14%; } #results-table thead th:nth-child(2) { width: 26%; }
  #results-table thead th:nth-child(3) { width: 17%; } #results-table thead th:nth-child(4) { width: 14%; }
  #results-table td, #results-table th { overflow-wrap: break-word; }
}
</style>"""
TABLE_HEADERS = ['<th class="sortable" data-column-type="symptom">Symptom</th>',
                 '<th class="sortable" data-column-type="category">Category</th>',
                 '<th class="sortable" data-column-type="verdict_outcome">Outcome</th>',
                 '<th class="col-verdict">Verdict</th>']


def table_cells(properties: dict[str, Any], catalog: Catalog, redactor: Redactor) -> list[str]:
    """The check's row in the results table: its symptom, category, outcome and one-line verdict (passed
    rows included), from the test's JUnit properties; empty for a test that is no catalog check."""
    symptom = str(properties.get("symptom", ""))
    category = catalog.symptoms[symptom].category if symptom in catalog.symptoms else ""
    outcome = str(properties.get("outcome", ""))
    verdict = str(properties.get("verdict", "")).split(": ", 1)[-1]
    colour = outcome_colour(outcome)
    return [f'<td class="col-symptom">{html.escape(symptom)}</td>', f'<td class="col-category">{html.escape(category)}</td>',
            f'<td class="col-verdict_outcome" style="color:{colour}">{html.escape(outcome)}</td>',
            f'<td class="col-verdict">{html.escape(redactor.text(verdict))}</td>']


def _evidence(evidence: dict[str, Any]) -> str:
    """Evidence by step, as tables (a step's figures) and lists (its series), never one JSON blob."""
    esc, parts = html.escape, []
    for step, body in evidence.items():
        if isinstance(body, dict):
            rows = "".join(f"<tr><th>{esc(str(key))}</th><td>{esc(_short(value))}</td></tr>" for key, value in body.items()
                           if key != "timeline")
            parts.append(f"<h5>{esc(step)}</h5><table>{rows}</table>")
        elif isinstance(body, list):
            items = "".join(f"<li>{esc(_short(item))}</li>" for item in body[:20])
            parts.append(f"<h5>{esc(step)}</h5><ul>{items}</ul>")
        else:
            parts.append(f"<h5>{esc(step)}</h5><p>{esc(_short(body))}</p>")
    return "".join(parts)


def _short(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + " ..."


def extras(record: dict[str, Any], redactor: Redactor) -> list[Any]:
    """The check's block and charts, as pytest-html extras for the test's row."""
    return [html_extras.html(block(record, redactor) + "".join(svg for _, svg in charts_for(record)))]


def anchor(check_id: str, variant: str) -> str:
    """A check's place in a report page (report.html, serve's /report): the alert's link points there."""
    return f"{check_id}-{variant}".replace(".", "-")


def block(record: dict[str, Any], redactor: Redactor) -> str:
    esc = html.escape
    colour = outcome_colour(record["outcome"])
    errors = "".join(f"<li><b>could not evaluate</b> {esc(e['step'])} ({esc(e['target'])}): {esc(e['error'])}</li>"
                     for e in record["errors"])
    conditions = "".join(f"<li><b>{esc(c['level'])}</b> {esc(c['text'])}</li>" for c in record["conditions"]
                         if c["text"])
    conditions += "".join(f"<li><b>not measured</b> {esc(n)}</li>" for n in record.get("not_measured") or ())
    conditions += "".join(f"<li><i>note</i> {esc(n)}</li>" for n in record.get("notes") or ())
    evidence = _evidence(record["evidence"])
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
    return redactor.text(
        f"<div class='veza' id='{esc(anchor(record['id'], record.get('variant', '')), quote=True)}'>"
        f"<h3 style='color:{colour}'>{esc(record['summary'])}</h3>"
        f"<p><i>{esc(record.get('title_fr', ''))}</i> — {esc(record.get('title_en', ''))}</p>"
        f"<ul>{errors}{conditions}</ul>{flaky}{measured}{links}"
        f"<h4 id='{esc(anchor(record['id'], record.get('variant', '')), quote=True)}-runbook'>"
        f"Solutions ({esc(rb.get('section', ''))})</h4><pre>{esc(rb.get('solutions', ''))}</pre>"
        f"<h4>Prévention</h4><pre>{esc(rb.get('prevention', ''))}</pre>"
        f"<details><summary>Measurements and evidence (by step)</summary>"
        f"{_evidence({'measurements': dict(record['measurements'])})}{evidence}</details></div>")


def metadata(profile: Profile, location: str, faults: list[str], started_at: dt.datetime) -> dict[str, Any]:
    """The HTML report's Environment table: what ran, where, against what (no secrets)."""
    return {"Environment": f"{profile.name} ({profile.allow})", "Location": location,
            "Endpoints": profile.redactor().data(profile.endpoints()), "Faults injected": ", ".join(faults) or "none",
            "Started": started_at.isoformat(timespec="seconds"),
            "Suite": f"veza-synthetics {__version__} ({git_commit() or 'no git'})"}


def changes(run: dict[str, Any], redactor: Redactor) -> list[str]:
    """The report's first lines: the root causes, then the checks that are NEW and RECOVERED since the last run."""
    causes = [f"<p><b>{html.escape(redactor.text(line))}</b></p>" for line in headline(run)]
    return [*causes, *_news(run, redactor), '<p><a href="../history.html">History of this env and location</a> '
                                  "(every check's last runs, pass rate, time to recover)</p>"]


def _news(run: dict[str, Any], redactor: Redactor) -> list[str]:
    news = [c for c in run["checks"] if (c.get("trend") or {}).get("state") in ("new", "recovered")]
    if not news:
        runs = (run.get("history") or {}).get("runs", 0)
        return [f"<p>Since the last run: nothing changed ({runs} past run(s) of this env and location).</p>"]
    items = "".join(f"<li><b>{html.escape(c['trend']['state'].upper())}</b> {html.escape(c['id'])}: "
                    f"{html.escape(redactor.text(c['summary'].split(': ', 1)[-1]))}</li>" for c in news)
    return [f"<p>Since the last run:</p><ul>{items}</ul>"]
