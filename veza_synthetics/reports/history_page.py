"""reports/history.html: one row per check over the kept runs of an env and location.

A strip of the last outcomes, a sparkline of the check's key measurement against its
thresholds, the pass rate (maintenance, no data and skips left out), the time since the last
failure and the mean time to recover. Self-contained: no script, no network.
"""
from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path
from typing import Any

import pytest

from .. import history
from ..hooks import RunFinished
from ..outcome import Outcome, colour
from ..redact import Redactor

SW, SH = 180, 36  # sparkline size


def _when(text: str) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _key_measurement(check: dict[str, Any]) -> tuple[str, float] | None:
    judged = [c for c in check.get("conditions", []) if c.get("threshold") and isinstance(c.get("value"), (int, float))]
    return (judged[0]["threshold"], float(judged[0]["value"])) if judged else None


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def rows(runs: list[dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """Per check: its outcomes oldest first, key measurement series, thresholds and the figures shown."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for run in runs:
        when = _when(run.get("started_at", ""))
        for check in run["checks"]:
            row = table.setdefault((check["id"], check["variant"]), {"id": check["id"], "variant": check["variant"],
                                                                      "runs": [], "values": [], "thresholds": {}})
            row["runs"].append((check["outcome"], when, check.get("summary", "")))
            key = _key_measurement(check)
            if key:
                row["values"].append(key[1])
                row["measurement"] = key[0]
                row["thresholds"] = (check.get("thresholds") or {}).get(key[0], {})
    for row in table.values():
        judged = [(o, w) for o, w, _ in row["runs"] if o in ("passed", "degraded", "failed")]
        good = sum(1 for o, _ in judged if o != "failed")
        row["pass_rate"] = f"{100 * good / len(judged):.0f} % of {len(judged)}" if judged else "no judged run"
        failures = [w for o, w in judged if o == "failed" and w]
        row["since_failure"] = _duration((now - failures[-1]).total_seconds()) + " ago" if failures else "never failed"
        recoveries, started = [], None
        for outcome, when in judged:
            if outcome == "failed" and started is None:
                started = when
            elif outcome != "failed" and started is not None and when is not None:
                recoveries.append((when - started).total_seconds())
                started = None
        row["mttr"] = _duration(sum(recoveries) / len(recoveries)) if recoveries else "no recovery yet"
    return sorted(table.values(), key=lambda r: (r["id"], r["variant"]))


def _strip(runs: list[tuple[str, dt.datetime | None, str]], redactor: Redactor) -> str:
    cells = []
    for outcome, when, summary in runs:
        tip = escape(f"{when:%Y-%m-%d %H:%M} " if when else "") + escape(redactor.text(summary)[:200])
        cells.append(f'<span class="cell" style="background:{colour(outcome) if outcome else "#fff"}" title="{tip}"></span>')
    return "".join(cells)


def _sparkline(values: list[float], thresholds: dict[str, Any]) -> str:
    if len(values) < 2:
        return "" if not values else f"{values[0]:.3g}"
    levels = [float(thresholds[k]) for k in ("warn", "fail") if isinstance(thresholds.get(k), (int, float))]
    lo, hi = min([*values, *levels]), max([*values, *levels])
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return SH - 3 - (v - lo) * (SH - 6) / span
    step = (SW - 4) / (len(values) - 1)
    points = " ".join(f"{2 + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
    lines = "".join(f'<line x1="0" x2="{SW}" y1="{y(level):.1f}" y2="{y(level):.1f}" stroke="{colour}" '
                    f'stroke-dasharray="3,2"/>' for level, colour in zip(
                        [thresholds.get("warn"), thresholds.get("fail")], ["#bf8700", "#cf222e"], strict=True)
                    if isinstance(level, (int, float)))
    return (f'<svg class="spark" width="{SW}" height="{SH}" xmlns="http://www.w3.org/2000/svg">{lines}'
            f'<polyline fill="none" stroke="#0969da" stroke-width="1.5" points="{points}"/></svg>'
            f' <small>{values[-1]:.3g}</small>')


def render(runs: list[dict[str, Any]], env: str, location: str, redactor: Redactor, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    body = []
    for row in rows(runs, now):
        name = row["id"] + (" (writes)" if row["variant"] == "writes" else "")
        body.append(f"<tr><td>{escape(name)}</td><td>{_strip(row['runs'], redactor)}</td>"
                    f"<td>{escape(row.get('measurement', ''))} {_sparkline(row['values'], row['thresholds'])}</td>"
                    f"<td>{escape(row['pass_rate'])}</td><td>{escape(row['since_failure'])}</td>"
                    f"<td>{escape(row['mttr'])}</td></tr>")
    legend = " ".join(f'<span class="cell" style="background:{o.colour}"></span> {escape(o)}' for o in Outcome)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>History: {escape(env)} ({escape(location)})"
            "</title><style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
            "td,th{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:middle}"
            ".cell{display:inline-block;width:10px;height:18px;margin-right:2px;border-radius:2px}</style></head><body>"
            f"<h1>Veza synthetic checks: history of {escape(env)} ({escape(location)})</h1>"
            f"<p>{len(runs)} run(s), oldest first; hover a cell for its verdict. {legend}</p>"
            "<table><tr><th>check</th><th>last runs</th><th>key measurement (dashed: warn, fail)</th>"
            "<th>pass rate</th><th>last failure</th><th>mean time to recover</th></tr>"
            + "".join(body) + "</table></body></html>")


@pytest.hookimpl
def pytest_veza_run_finished(finished: RunFinished) -> None:
    """The finished run joins its env and location's history, and the page is drawn again."""
    run = finished.result.document()
    if not finished.completed or not run["checks"]:
        return
    history.add(finished.history_dir, run, finished.profile.history.keep)
    kept = history.load(finished.history_dir, run["env"], run["location"]).runs
    write(kept, run["env"], run["location"], finished.reports_root / "history.html", finished.redactor)


def write(runs: list[dict[str, Any]], env: str, location: str, path: Path, redactor: Redactor) -> None:
    path.write_text(redactor.text(render(runs, env, location, redactor)), encoding="utf-8")
