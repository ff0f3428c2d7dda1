"""The typed profile: its sections (settings.py) and the checks' view of them, as loaded and validated by
profile.py."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .errors import SetupError
from .redact import Redactor
from .settings import (
    Accounts,
    Auth,
    Backend,
    Chat,
    History,
    Holds,
    Links,
    Postgres,
    Prometheus,
    Redis,
    Sampling,
    SandboxAdmin,
    Serve,
    Stream,
    Timeouts,
    Tls,
    Tracing,
)

ENV_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "environments"
# The sandbox's shapes and the profile each starts from: the guide's contract; the public Veza code with
# its dev server (cmd/server) or with its production server (cmd/production-server) in front.
SANDBOX_VARIANTS = {"contract": "sandbox.toml", "deployed": "sandbox-deployed.toml",
                    "production-server": "sandbox-production-server.toml"}
VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
SECRET_KEYS = ("password", "secret", "user_password", "admin_password")

SECTIONS: dict[str, type] = {
    "backend": Backend, "chat": Chat, "stream": Stream, "postgres": Postgres, "redis": Redis,
    "prometheus": Prometheus, "accounts": Accounts, "timeouts": Timeouts, "holds": Holds, "sampling": Sampling,
    "auth": Auth, "tls": Tls, "tracing": Tracing, "links": Links, "serve": Serve, "sandbox": SandboxAdmin, "history": History,
}
# Every setting a profile may hold, with its default and therefore its type.
DEFAULTS: dict[str, Any] = {
    "name": "", "kind": "live", "allow": "readonly", "location": "local", "extends": "",
    **{name: asdict(section()) for name, section in SECTIONS.items()},
    "thresholds": {}, "maintenance": [],
    "quorum": 0,  # locations that must fail a check for a merged verdict to fail it (veza-synth merge); 0 = a majority
}


# Sections whose every number a probe divides by, waits for or counts with: 0 or less is a broken profile.
POSITIVE = {"timeouts": "every network call is bounded", "holds": "a hold lasts some time",
            "sampling": "a sample needs at least one of each", "history": "a count of runs"}
ZERO_MEANS_NONE = {"holds.front_door_read_timeout_s"}  # 0: there is none (never below 0)


@dataclass(frozen=True)
class Maintenance:
    """A planned window: checks run inside it are reported as "maintenance", neither pass nor fail."""
    start: dt.datetime
    end: dt.datetime
    reason: str = ""

    def covers(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end


def _windows(entries: list[Any], source: str) -> tuple[Maintenance, ...]:
    windows = []
    for number, entry in enumerate(entries, 1):
        where = f"profile {source}: maintenance window {number}"
        if not isinstance(entry, dict) or set(entry) - {"start", "end", "reason"}:
            raise SetupError(f"{where} must be {{start = ..., end = ..., reason = \"...\"}}")
        try:
            start, end = (entry[k] if isinstance(entry[k], dt.datetime) else dt.datetime.fromisoformat(str(entry[k]))
                          for k in ("start", "end"))
        except (KeyError, ValueError) as exc:
            raise SetupError(f"{where}: 'start' and 'end' must be date-times with a time zone ({exc})") from None
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise SetupError(f"{where}: 'start' and 'end' need a time zone (2026-12-01T02:00:00Z), end after start")
        windows.append(Maintenance(start, end, str(entry.get("reason", ""))))
    return tuple(windows)
KINDS, ALLOWS = ("live", "sandbox"), ("readonly", "writes")


@dataclass(frozen=True)
class Profile:
    """A validated profile: every setting typed, every ${VAR} resolved."""
    name: str
    kind: str
    allow: str
    location: str
    backend: Backend
    chat: Chat
    stream: Stream
    postgres: Postgres
    redis: Redis
    prometheus: Prometheus
    accounts: Accounts
    timeouts: Timeouts
    holds: Holds
    sampling: Sampling
    auth: Auth
    tls: Tls
    tracing: Tracing
    links: Links
    serve: Serve
    sandbox: SandboxAdmin
    history: History
    thresholds: dict[str, dict[str, dict[str, float]]]
    source: str
    maintenance: tuple[Maintenance, ...] = ()
    quorum: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> "Profile":
        sections = {name: section(**data[name]) for name, section in SECTIONS.items()}
        return cls(name=data["name"], kind=data["kind"], allow=data["allow"], location=data["location"],
                   thresholds=data["thresholds"], source=source, maintenance=_windows(data["maintenance"], source),
                   quorum=data["quorum"], **sections)

    def maintenance_at(self, moment: dt.datetime) -> Maintenance | None:
        return next((w for w in self.maintenance if w.covers(moment)), None)

    def with_changes(self, section: str, **values: Any) -> "Profile":
        """The same profile with some settings of one section changed (benchmarks and tests vary them)."""
        return replace(self, **{section: replace(getattr(self, section), **values)})

    @property
    def allows_writes(self) -> bool:
        return self.allow == "writes"

    @property
    def writes_skipped(self) -> str:
        """Why a check's writes variant does not run here ("" where writes are allowed): a run and serve say it alike."""
        return "" if self.allows_writes else f"skipped for safety: profile '{self.name}' forbids writes"

    @property
    def has_postgres(self) -> bool:
        return bool(self.postgres.host)

    @property
    def has_redis(self) -> bool:
        return bool(self.redis.url)

    @property
    def has_prometheus(self) -> bool:
        return bool(self.prometheus.url)

    @property
    def has_chat(self) -> bool:
        return bool(self.chat.url)

    @property
    def has_stream(self) -> bool:
        return bool(self.stream.url)

    def secrets(self) -> list[str]:
        """Every secret value the profile resolved, for redaction."""
        sections = asdict(self)
        named = [str(v) for name in SECTIONS for k, v in sections[name].items() if k in SECRET_KEYS and v]
        return named + [v for v in self.tracing.otlp_headers.values() if v]  # a collector's token

    def redactor(self) -> Redactor:
        """The masking of this profile's secrets (and of what looks like one anywhere)."""
        return Redactor(self.secrets())

    def threshold_overrides(self, symptom_id: str) -> dict[str, dict[str, float]]:
        return self.thresholds.get(symptom_id, {})

    def urls(self) -> list[str]:
        """Every HTTP and WebSocket address the profile names: the endpoints its tls.ca_file is trusted for."""
        return [u for u in (self.backend.url, self.chat.url, self.chat.health_url, self.stream.url, self.prometheus.url) if u]

    def endpoints(self) -> dict[str, str]:
        """Target addresses for reports (credentials in URLs are redacted by the report writers)."""
        named = {"backend": self.backend.url, "chat": self.chat.url, "stream": self.stream.url, "redis": self.redis.url,
                 "prometheus": self.prometheus.url}
        out = {name: url for name, url in named.items() if url}
        if self.postgres.host:
            out["postgres"] = self.postgres.address
        return out
