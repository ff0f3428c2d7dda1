"""summary.md: what is wrong first, then every check; the nightly's issue body and the gate's job summary."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..dependencies import headline
from ..outcome import Outcome
from ..redact import Redactor


def write(run: dict[str, Any], path: Path, redactor: Redactor) -> None:
    path.write_text(redactor.text(summary(run, path.parent)))


def summary(run: dict[str, Any], folder: Path) -> str:
    checks = run["checks"]
    failed = [c for c in checks if c["outcome"] == "failed"]
    degraded = [c for c in checks if c["outcome"] == "degraded"]
    counts = {k: sum(1 for c in checks if c["outcome"] == k) for k in sorted(Outcome, key=lambda o: -o.rank)}
    no_data = [c for c in checks if c["outcome"] == "no_data"]
    lines = [f"# Veza synthetic checks: {run['env']} ({run['location']}), {run['started_at'][:19]}Z", ""]
    lines += [f"**{line}**" for line in headline(run)]
    lines += ["", " · ".join(f"{n} {k}" for k, n in counts.items()),
             f"Faults injected: {', '.join(run['faults']) or 'none'}", ""]
    news = {state: [c for c in checks if (c.get("trend") or {}).get("state") == state] for state in ("new", "recovered")}
    if news["new"] or news["recovered"]:
        lines.append("## Changed since the last run")
        lines += [f"- **NEW** `{c['id']}`: {c['summary'].split(': ', 1)[-1]}" for c in news["new"]]
        lines += [f"- **RECOVERED** `{c['id']}` after {c['trend']['runs']} failed run(s)" for c in news["recovered"]]
        lines.append("")
    if failed or degraded:
        lines.append("## What is wrong")
        for c in [c for c in failed if c.get("blocked_by")]:
            lines.append(f"- **FAILED** `{c['id']}`: blocked by {c['blocked_by']}")
        for c in [c for c in failed if not c.get("blocked_by")] + degraded:
            remedies = (c["runbook"].get("solutions") or "").splitlines() or ["(the check names none)"]
            quarantined = (f" (quarantined until {c['quarantined']['expires']}, owner {c['quarantined']['owner']}: "
                           f"{c['quarantined']['reason']})") if c.get("quarantined") else ""
            lines += [f"- **{c['outcome'].upper()}** `{c['id']}`{quarantined} ({c['title_fr']}): "
                      f"{c['summary'].split(': ', 1)[-1]}",
                      f"  - First remedy: {remedies[0]}"]
            lines += [f"  - [{link['label']}]({link['url']})" for link in (c.get("links") or [])[:8]]
        lines.append("")
    if no_data:
        lines.append("## Not measured (no data: neither a pass nor a failure)")
        lines += [f"- `{c['id']}`: {c['summary'].split(': ', 1)[-1]}" for c in no_data]
        lines.append("")
    lines += ["## All checks", "", "| check | outcome | trend | verdict |", "|---|---|---|---|"]
    lines += [f"| {c['id']}{' (writes)' if c['variant'] == 'writes' else ''} | {c['outcome']} | {_trend(c)} | "
              f"{c['summary'].split(': ', 1)[-1].replace('|', '/')} |" for c in checks]
    lines += ["", f"Full report: {folder / 'report.html'}", f"History: {folder.parent / 'history.html'}"]
    return "\n".join(lines) + "\n"


def _trend(check: dict[str, Any]) -> str:
    trend = check.get("trend")
    if not trend:
        return ""
    state = trend["state"].replace("_", " ")
    return f"{state} ({trend['runs']} runs since {str(trend['since'])[:10]})" if trend["state"] != "new" else state
