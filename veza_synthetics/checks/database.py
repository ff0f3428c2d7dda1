"""Database: connection timeouts and saturation, constraint errors (query performance: query_performance.py).

Direct access is a read-only pg_monitor session. Without it (the profile names no
PostgreSQL), the figures come from postgres_exporter through Prometheus, the verdict says
so, and what only a session can measure is reported as not measured.
"""
from __future__ import annotations

import uuid

from ..probes import auth, exporters, postgres
from ..target import Target
from ..verdict import Verdict
from . import check, exporter_reaching


def through_exporter(v: Verdict, target: Target, unmeasured: str) -> bool:
    """No direct access: True if postgres_exporter's figures can stand in (the verdict names the source)."""
    p = target.profile
    if not p.has_prometheus:
        v.missing("no PostgreSQL and no Prometheus in this profile")
        return False
    v.note(f"source: postgres_exporter through Prometheus ({p.prometheus.postgres_selector}): "
           "no direct PostgreSQL access in this profile")
    v.missing(f"{unmeasured}: not measured (needs direct PostgreSQL access)")
    return True


def _saturation_from_exporter(v: Verdict, target: Target) -> None:
    figures = exporter_reaching(v, target, "postgres", {**exporters.POSTGRES, "activity": exporters.POSTGRES_ACTIVITY})
    if figures is None:
        return
    used, most, reserved = figures.value("connections"), figures.value("max_connections"), figures.value("reserved")
    if used is None or not most:
        v.missing("connections used: no pg_stat_activity_count / pg_settings_max_connections series")
        return
    v.against("connections_used_pct", 100 * used / most, label="connections used (postgres_exporter)",
              detail=f"{used:.0f}/{most:.0f}, {reserved or 0:.0f} reserved for superusers")


@check("db.connection_timeout")
def connection_timeout(v: Verdict, target: Target, attempt: int) -> None:
    if not target.profile.has_postgres:
        if through_exporter(v, target, "connect time"):
            _saturation_from_exporter(v, target)
        return
    cfg, timeout = target.profile.postgres, target.timeout("connect")
    connects = postgres.connect_times(target.transport, cfg, target.profile.sampling.db_connects, timeout,
                                      fail_ms=v.thresholds["connect_p95_ms"].fail,
                                      queries={"saturation": postgres.SATURATION, "activity": postgres.ACTIVITY})
    v.record("connects", connects)
    if "stopped" in connects.evidence:
        v.note(f"connects stopped {connects.evidence['stopped']}")
    m = connects.measurements
    v.require(m["connect_failures"] == 0, f"{m['connect_failures']}/{m['connect_attempts']} connects failed: "
              + "; ".join(connects.evidence["connect_errors"][:2]))
    v.against_p95("connect_p95_ms", connects.evidence["connect_ms"], label="connect", unit_of="connects")
    state = connects.inspection
    if state is not None and v.record("saturation", state):
        row = state.evidence["saturation"][0]
        pct = 100 * row["used"] / max(row["max_connections"], 1)
        v.against("connections_used_pct", pct, label="connections used",
                  detail=f"{row['used']}/{row['max_connections']}, {row['reserved']} reserved for superusers")
    elif target.profile.has_prometheus:  # refused: the exporter, connected already, still sees the server
        v.note("PostgreSQL refused the suite's session: connections used come from postgres_exporter")
        _saturation_from_exporter(v, target)


@check("db.constraint_errors")
def constraint_errors(v: Verdict, target: Target, attempt: int) -> None:
    if not target.profile.has_postgres:
        if through_exporter(v, target, "names of NOT VALID constraints"):
            figures = exporter_reaching(v, target, "postgres", exporters.POSTGRES_CONSTRAINTS)
            count = figures.value("not_valid_constraints") if figures else None
            if figures and count is None:
                v.missing("veza_constraints_not_valid: no series (load postgres-exporter-queries.yaml in the exporter)")
            elif count is not None:
                v.against("not_valid_constraints", count, text=f"NOT VALID constraints {count:.0f} (postgres_exporter)")
        return
    state = postgres.inspect(target.transport, target.profile.postgres, target.timeout("connect"),
                             {"not_valid": postgres.NOT_VALID})
    if v.record("constraints", state):
        bad = state.evidence["not_valid"]
        v.against("not_valid_constraints", len(bad), text=f"NOT VALID constraints {len(bad)}"
                  + (": " + ", ".join(f"{c['table_name']}.{c['constraint_name']}" for c in bad) if bad else ""))


@check("db.constraint_errors", writes=True)
def constraint_errors_writes(v: Verdict, target: Target, attempt: int) -> None:
    """A duplicate is a 409, never a 500; the synthetic playlist is always deleted."""
    base, timeout = target.profile.backend.url, target.timeout("request")
    token = target.token()
    if token is None:
        v.error("login", base, target.login_failure())
        return
    name = f"veza-synthetics {uuid.uuid4().hex[:8]}"
    first = auth.request(target.transport, base, "POST", "/api/v1/playlists", timeout, token=token, json_body={"name": name})
    if not v.record("create", first):
        return
    created = first.body.get("data") or {} if first.measurements["status"] == 201 else {}
    try:
        if not v.require(first.measurements["status"] == 201,
                         f"create playlist answered {first.measurements['status']}: {first.evidence.get('reason')}"):
            return
        again = auth.request(target.transport, base, "POST", "/api/v1/playlists", timeout, token=token, json_body={"name": name})
        if v.record("duplicate", again):
            status = again.measurements["status"]
            v.require(status == 409, f"duplicate playlist answered {status} {again.evidence.get('reason')!r}, expected 409",
                      ok_text="create 201, duplicate 409")
    finally:
        if created.get("id"):
            deleted = auth.request(target.transport, base, "DELETE", f"/api/v1/playlists/{created['id']}", timeout, token=token)
            if v.record("delete", deleted):
                v.require(deleted.measurements["status"] == 204,
                          f"delete playlist answered {deleted.measurements['status']}, expected 204",
                          ok_text="delete 204")
