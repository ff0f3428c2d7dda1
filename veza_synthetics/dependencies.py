"""Root cause first: when a dependency is down, the checks behind it are grouped under it.

The catalog says what each check depends on (backend, login, chat, stream, postgres, redis,
prometheus). After a run with failures, each dependency is probed once, read-only and
bounded: does the backend answer HTTP at all, can the synthetic account log in (and out),
do the chat, stream, PostgreSQL, Redis and Prometheus accept a connection. A failed check
with a dependency down is marked "blocked by ..." and listed under it; a check that fails
while its dependencies are up is never grouped.
"""
from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .catalog import Catalog
from .client import transport
from .probes import auth, describe, http
from .probes.transport import Transport
from .profile import Profile
from .record import CheckRecord


def _tcp(address: str, default_port: int, timeout_s: float) -> str | None:
    parts = urlsplit(address if "//" in address else f"//{address}")
    try:
        with socket.create_connection((parts.hostname or "", parts.port or default_port), timeout=timeout_s):
            return None
    except OSError as exc:
        return describe(exc, timeout_s)


GATEWAY_ERRORS = (502, 504)  # a proxy in front answers for a server behind it that does not


def _http(way: Transport, url: str, timeout_s: float) -> str | None:
    """Down when nothing answers, or when the proxy in front says the server behind it does not; any
    other HTTP status means the server is there (its own health is health.services' to judge)."""
    result = http.fetch(way, url, timeout_s)
    if result.error is None and result.measurements["status"] in GATEWAY_ERRORS:
        return f"answered {result.measurements['status']}: the proxy in front cannot reach it"
    return result.error


def probe(profile: Profile, records: Sequence[CheckRecord], way: Transport | None = None) -> dict[str, str | None]:
    """Each configured dependency: None when up, else why it is down (one line), through `way` where the
    caller's transport paces and budgets its requests (serve's client). Login is read from the run's own
    session (the checks' "login" step): the probe logs in no more than the checks did."""
    timeout = profile.timeouts.connect_s
    p, down, way = profile, {}, way or transport(profile)
    if p.backend.url:
        down["backend"] = _http(way, f"{p.backend.url}{p.backend.health_path}", timeout)
        if down["backend"] is None and p.accounts.user_email:
            down["login"] = login_failure(records)
    if p.chat.url:
        down["chat"] = _tcp(p.chat.url, 443 if p.chat.url.startswith("wss") else 80, timeout)
    if p.stream.url:
        down["stream"] = _http(way, f"{p.stream.url}/health", timeout)
    if p.has_postgres:
        down["postgres"] = _tcp(f"{p.postgres.host}:{p.postgres.port}", 5432, timeout)
    if p.has_redis:
        down["redis"] = _tcp(p.redis.url, 6379, timeout)
    if p.has_prometheus:
        down["prometheus"] = _http(way, f"{p.prometheus.url}/-/ready", timeout)
    return down


def login_failure(records: Sequence[CheckRecord]) -> str | None:
    """Why the run's login failed, from the checks that recorded it (None: it worked, or none logged in)."""
    for record in records:
        error = next((e["error"] for e in record.errors if e.get("step") == "login"), None)
        status = record.measurements.get("login.status")
        if error or (status is not None and status != 200):
            return error or f"login {auth.answered(status, record.evidence.get('login', {}))}"
    return None


WORDING = {"backend": "backend unreachable", "login": "login failing", "chat": "chat unreachable",
           "stream": "stream server unreachable", "postgres": "PostgreSQL unreachable", "redis": "Redis unreachable",
           "prometheus": "Prometheus unreachable"}


@dataclass(frozen=True)
class RootCause:
    dependency: str
    reason: str  # "backend unreachable (connection refused)"
    checks: tuple[str, ...]  # the failed checks it blocks

    def to_json(self) -> dict[str, Any]:
        return {"dependency": self.dependency, "reason": self.reason, "checks": list(self.checks)}


@dataclass(frozen=True)
class Grouping:
    records: tuple[CheckRecord, ...]  # each failed check with a dependency down marked `blocked_by`
    root_causes: tuple[RootCause, ...]  # the widest first
    dependencies: Mapping[str, str]  # each probed dependency: "up" or "down: why"


def group(records: Sequence[CheckRecord], down: Mapping[str, str | None], catalog: Catalog) -> Grouping:
    """Each failed check whose dependency is down marked `blocked_by`, and the root causes, the widest first.
    Login counts as down only while the backend answers (else the backend is the cause)."""
    symptoms = catalog.symptoms
    causes: dict[str, list[str]] = {}
    grouped = []
    for record in records:
        dependency = next((d for d in symptoms[record.id].depends_on if down.get(d)), None) \
            if record.outcome == "failed" and record.id in symptoms else None  # the deepest first
        if dependency is not None:
            record = record.but(blocked_by=f"{WORDING[dependency]} ({down[dependency]})")
            causes.setdefault(dependency, []).append(record.id)
        grouped.append(record)
    root_causes = sorted((RootCause(d, f"{WORDING[d]} ({down[d]})", tuple(sorted(set(ids)))) for d, ids in causes.items()),
                         key=lambda c: -len(c.checks))
    return Grouping(tuple(grouped), tuple(root_causes),
                    {d: ("up" if why is None else f"down: {why}") for d, why in down.items()})


def headline(run: dict[str, Any]) -> list[str]:
    """The first lines of every report: "backend unreachable (...): 14 checks blocked"."""
    return [f"ROOT CAUSE {cause['reason']}: {len(cause['checks'])} check(s) blocked: {', '.join(cause['checks'])}"
            for cause in run.get("root_causes", [])]
