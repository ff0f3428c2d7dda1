"""One treatment for every record, whichever way it was measured (a pytest run, serve's rounds and probes, the
matrix): the links to the platform's tools, the runbook with this environment's addresses, a maintenance
window ("maintenance", its measured outcome kept: no page), the quarantine (a failure that reports but does not
gate). The same record then reaches report.html, serve's /report and /metrics alike."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import links, remedies
from .profile import Profile
from .quarantine import Entry
from .record import CheckRecord
from .redact import Redactor


@dataclass(frozen=True)
class Context:
    profile: Profile
    redactor: Redactor
    quarantine: Mapping[str, Entry] = field(default_factory=dict)  # check id -> its entry (quarantine.load)


def enrich(record: CheckRecord, context: Context, at: dt.datetime | None = None) -> CheckRecord:
    """The record as every report shows it, measured `at` (now by default)."""
    p = context.profile
    record = remedies.for_environment(links.attach(record, p, context.redactor), p)
    window = p.maintenance_at(at or dt.datetime.now(dt.UTC))
    entry = context.quarantine.get(record.id)
    if window is not None:
        return record.but(
            outcome="maintenance", measured_outcome=record.outcome,
            maintenance={"start": window.start.isoformat(), "end": window.end.isoformat(), "reason": window.reason},
            summary=f"{record.id}: maintenance window until {window.end.isoformat()}"
                    f"{f' ({window.reason})' if window.reason else ''}; measured "
                    f"{record.outcome}: {record.summary.split(': ', 1)[-1]}")
    if entry is not None and record.outcome == "failed":
        return record.but(quarantined=entry.as_dict())
    return record
