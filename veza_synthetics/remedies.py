"""The guide's remedies for this environment: its commands say `localhost:9090` and `psql -h localhost`
whatever the platform; a report shows them with the profile's real addresses, so a remedy can be pasted
as it is. A database or Redis command names the host, port, database and user, never a password."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from .profile import Profile
from .record import CheckRecord

GUIDE_BACKEND, GUIDE_PROMETHEUS, GUIDE_CHAT = "http://localhost:8080", "http://localhost:9090", "ws://localhost:8081/chat"
GUIDE_PSQL, GUIDE_REDIS = "psql -h localhost -U veza_user -d veza_db", "redis-cli"


def _replacements(profile: Profile) -> list[tuple[str, str]]:
    """(the guide's words, this environment's), longest first, for the parts the profile has."""
    out = []
    if profile.backend.url:
        out.append((f"{GUIDE_BACKEND}/health", f"{profile.backend.url}{profile.backend.health_path}"))
        out.append((GUIDE_BACKEND, profile.backend.url))
    if profile.has_prometheus:
        out.append((GUIDE_PROMETHEUS, profile.prometheus.url))
    if profile.chat.url:
        out.append((GUIDE_CHAT, profile.chat.url))
    if profile.has_postgres:
        pg = profile.postgres
        out.append((GUIDE_PSQL, f"psql -h {pg.host} -p {pg.port} -U {pg.user or 'veza_user'} -d {pg.dbname}"))
    if profile.has_redis:
        parts = urlsplit(profile.redis.url)
        out.append((GUIDE_REDIS, f"redis-cli -h {parts.hostname or 'localhost'} -p {parts.port or 6379}"))
    return out


def render(text: str, profile: Profile) -> str:
    for guide, here in _replacements(profile):
        text = text.replace(guide, here)
    return text


def for_environment(record: CheckRecord, profile: Profile) -> CheckRecord:
    """The record with its runbook's commands naming this environment's addresses."""
    runbook: dict[str, Any] = dict(record.runbook)
    for key in ("solutions", "prevention"):
        if isinstance(runbook.get(key), str):
            runbook[key] = render(runbook[key], profile)
    runbook["diagnostics"] = [render(line, profile) for line in runbook.get("diagnostics") or []]
    return record.but(runbook=runbook)
