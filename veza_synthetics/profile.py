"""Environment profiles (TOML): endpoints, credentials as ${VAR} references, limits, permissions."""
from __future__ import annotations

import copy
import datetime as dt
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .catalog import load as load_catalog
from .errors import SetupError

ENV_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "environments"
VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
SECRET_KEYS = ("password", "secret", "user_password", "admin_password")

@dataclass(frozen=True)
class Backend:
    url: str = ""
    health_path: str = "/health"
    ready_path: str = "/ready"
    search_query: str = "Track {n}"  # {n}: the call's number; the sandbox's titles are "Track N ..."
    search_min_results: int = 0      # results each search must return (0: not judged)


@dataclass(frozen=True)
class Chat:
    url: str = ""
    health_url: str = ""
    auth: str = "token"
    broadcast: bool = True
    # Sending chat messages is a write. A read-only profile sends none unless it names a conversation
    # kept for the synthetic account, where its messages may land (an explicit opt-in).
    synthetic_conversation: str = ""
    # The client's own application heartbeat ({"type": "Ping"}) while idle, in seconds; 0 = none, as a
    # browser on Veza's web app (it answers the server's 30 s pings and sends none).
    client_heartbeat_s: float = 0.0


@dataclass(frozen=True)
class Stream:
    url: str = ""
    secret: str = field(default="", repr=False)
    canary_track_id: int = 0
    canary: str = "canary"
    quality: str = "medium"
    content_type_required: bool = True  # False for the variant that omits it


@dataclass(frozen=True)
class Postgres:
    host: str = ""
    port: int = 5432
    dbname: str = "veza_db"
    user: str = ""
    password: str = field(default="", repr=False)
    sslmode: str = "prefer"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class Redis:
    url: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Prometheus:
    url: str = ""
    rate_window: str = "5m"
    jobs: str = "veza-backend,veza-chat,veza-stream,node,postgres,redis"  # Veza's scrape jobs (comma-separated)
    rule_groups: str = "veza_alerts"                         # the rule groups that must be loaded
    judge_real_traffic: bool = False  # judge the platform's own 5xx ratio and p95 over rate_window
    scrape_interval_s: float = 30.0   # the exporters' scrape interval: a check waits up to twice it for fresh figures
    # Which series are whose: PromQL label matchers for each exporter's series, and a regex of the
    # mountpoints whose disk is judged (every mount node_exporter reports, by default).
    node_selector: str = 'job="node"'
    postgres_selector: str = 'job="postgres"'
    redis_selector: str = 'job="redis"'
    mountpoints: str = ".*"

    def job_names(self) -> set[str]:
        return {j.strip() for j in self.jobs.split(",") if j.strip()}

    def group_names(self) -> set[str]:
        return {g.strip() for g in self.rule_groups.split(",") if g.strip()}


@dataclass(frozen=True)
class Accounts:
    user_email: str = ""
    user_password: str = field(default="", repr=False)
    admin_email: str = ""
    admin_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Timeouts:
    connect_s: float = 3.0
    request_s: float = 5.0
    stream_read_s: float = 10.0
    stream_s: float = 90.0
    ws_s: float = 5.0


@dataclass(frozen=True)
class Holds:
    session_s: float = 5.0
    ws_idle_s: float = 60.0


@dataclass(frozen=True)
class Sampling:
    requests: int = 80      # 20 per sampled endpoint: the fewest a p95 is computed from
    concurrency: int = 2    # in flight at once: low enough that the sample never queues behind itself
    max_rps: float = 0.75   # the sample's pace: 45 a minute, well under the 100 a minute Veza's server allows (B11)
    chat_messages: int = 50
    db_connects: int = 20   # p95 needs 20 or more values (else the max is judged, named so)
    search_calls: int = 20
    auth_calls: int = 10  # `me` calls of auth.http_401_403: enough to reach every instance behind a balancer


@dataclass(frozen=True)
class Auth:
    expires_in_s: int = 0
    session_store: str = "redis"


@dataclass(frozen=True)
class Tls:
    """Verification stays on; a private CA (a front door's own) is trusted by naming its file."""
    ca_file: str = ""


@dataclass(frozen=True)
class History:
    """Run-to-run memory (history.py): runs kept per env and location, and what flapping means."""
    keep: int = 30          # runs kept per env and location
    flap_window: int = 10   # runs looked at for flapping
    flap_changes: int = 3   # changes between failing and not in that window that make a check flap


@dataclass(frozen=True)
class SandboxAdmin:
    admin_url: str = ""


SECTIONS: dict[str, type] = {
    "backend": Backend, "chat": Chat, "stream": Stream, "postgres": Postgres, "redis": Redis,
    "prometheus": Prometheus, "accounts": Accounts, "timeouts": Timeouts, "holds": Holds, "sampling": Sampling,
    "auth": Auth, "tls": Tls, "sandbox": SandboxAdmin, "history": History,
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
    def has_postgres(self) -> bool:
        return bool(self.postgres.host)

    @property
    def has_redis(self) -> bool:
        return bool(self.redis.url)

    @property
    def has_prometheus(self) -> bool:
        return bool(self.prometheus.url)

    @property
    def has_stream(self) -> bool:
        return bool(self.stream.url)

    def secrets(self) -> list[str]:
        """Every secret value the profile resolved, for redaction."""
        found = []
        for name in SECTIONS:
            section = asdict(getattr(self, name))
            found += [str(v) for k, v in section.items() if k in SECRET_KEYS and v]
        return found

    def threshold_overrides(self, symptom_id: str) -> dict[str, dict[str, float]]:
        return self.thresholds.get(symptom_id, {})

    def endpoints(self) -> dict[str, str]:
        """Target addresses for reports (credentials in URLs are redacted by the report writers)."""
        out = {name: getattr(self, name).url for name in ("backend", "chat", "stream", "redis", "prometheus")
               if getattr(self, name).url}
        if self.postgres.host:
            out["postgres"] = self.postgres.address
        return out


def resolve_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    return ENV_DIR / f"{name_or_path}.toml"


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(sorted(p.stem for p in ENV_DIR.glob("*.toml")))
        raise SetupError(f"profile {path}: not found (known profiles: {names})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"profile {path}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], over: dict[str, Any], where: str, source: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if key not in DEFAULTS.get(where, DEFAULTS) if where else key not in DEFAULTS:
            setting = f"{where}.{key}" if where else key
            raise SetupError(f"profile {source}: unknown setting '{setting}'")
        if isinstance(out.get(key), dict) and key != "thresholds":
            if not isinstance(value, dict):
                raise SetupError(f"profile {source}: '{key}' must be a table")
            out[key] = _merge(out[key], value, key, source)
        else:
            out[key] = value
    return out


def _check_types(data: dict[str, Any], source: str) -> None:
    for section, defaults in DEFAULTS.items():
        if isinstance(defaults, dict):
            for key, default in defaults.items():
                _check_type(f"{section}.{key}", data[section][key], default, source)
        else:
            _check_type(section, data[section], defaults, source)
    if data["kind"] not in KINDS:
        raise SetupError(f"profile {source}: 'kind' must be one of {KINDS}, not {data['kind']!r}")
    if data["allow"] not in ALLOWS:
        raise SetupError(f"profile {source}: 'allow' must be one of {ALLOWS}, not {data['allow']!r}")
    for name in ("node_selector", "postgres_selector", "redis_selector", "mountpoints"):
        if not data["prometheus"][name].strip():
            raise SetupError(f"profile {source}: 'prometheus.{name}' must not be empty (e.g. "
                             f"{DEFAULTS['prometheus'][name]!r})")
    try:
        seconds(data["prometheus"]["rate_window"])
    except SetupError as exc:
        raise SetupError(f"profile {source}: 'prometheus.rate_window': {exc}") from None
    for section, why in POSITIVE.items():
        for name in DEFAULTS[section]:
            if data[section][name] <= 0:
                raise SetupError(f"profile {source}: '{section}.{name}' must be > 0 ({why}), "
                                 f"not {data[section][name]!r}")
    if data["quorum"] < 0:
        raise SetupError(f"profile {source}: 'quorum' must be >= 0 (0 means a majority), not {data['quorum']!r}")
    symptoms = load_catalog().symptoms
    for sid, overrides in data["thresholds"].items():
        if sid not in symptoms:
            raise SetupError(f"profile {source}: thresholds for unknown check '{sid}'")
        for name, levels in overrides.items():
            if name not in symptoms[sid].thresholds:
                raise SetupError(f"profile {source}: unknown threshold 'thresholds.\"{sid}\".{name}' "
                                 f"(known: {', '.join(symptoms[sid].thresholds) or 'none'})")
            if not isinstance(levels, dict) or set(levels) - {"warn", "fail"} or not all(
                    isinstance(v, (int, float)) for v in levels.values()):
                raise SetupError(f"profile {source}: 'thresholds.\"{sid}\".{name}' must be {{warn = N, fail = N}}")


def _check_type(setting: str, value: Any, default: Any, source: str) -> None:
    expected = float if isinstance(default, float) else type(default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) if expected is float else isinstance(value, expected)
    if expected is int and isinstance(value, bool):
        ok = False
    if not ok:
        raise SetupError(f"profile {source}: '{setting}' must be {expected.__name__}, not {type(value).__name__} ({value!r})")


def _substitute(data: dict[str, Any], source: str) -> dict[str, Any]:
    missing: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in node.items()}
        if isinstance(node, str):
            def value(match: re.Match[str]) -> str:
                var = match.group(1)
                got = os.environ.get(var)
                if not got:
                    missing.append(f"{var} (for {path}{', set but empty' if got == '' else ''})")
                    return ""
                return got
            return VAR.sub(value, node)
        return node

    out: dict[str, Any] = walk(data, "")
    if missing:
        raise SetupError(f"profile {source}: missing environment variable(s): " + "; ".join(missing))
    return out


def _literal_secrets(raw: dict[str, Any], source: str, kind: str) -> None:
    if kind == "sandbox":
        return  # the sandbox's own throwaway credentials, made per run
    for section, body in raw.items():
        if isinstance(body, dict):
            for key, value in body.items():
                if key in SECRET_KEYS and value and not VAR.fullmatch(str(value)):
                    raise SetupError(f"profile {source}: '{section}.{key}' holds a literal secret; "
                                     f"reference an environment variable instead, e.g. \"${{VEZA_{key.upper()}}}\"")


def seconds(duration: str) -> float:
    """A Prometheus duration ("5s", "5m", "1h30m") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise SetupError(f"not a Prometheus duration: {duration!r} (e.g. 5m, 30s)")
    unit_s = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * unit_s[u] for n, u in parts)


def unresolved(name_or_path: str) -> dict[str, Any]:
    """A profile's settings, type-checked, without resolving its ${VAR} references (no secret needed)."""
    data, chain = _merged(name_or_path)
    _check_types(data, str(chain[0][0]))
    return data


def quorum_of(name_or_path: str) -> int:
    """A profile's `quorum` (locations that must fail a check in a merged verdict; 0 = a majority), read
    without resolving its ${VAR} references: merging runs needs no secret."""
    data, chain = _merged(name_or_path)
    _check_types(data, str(chain[0][0]))
    quorum: int = data["quorum"]
    return quorum


def _merged(name_or_path: str) -> tuple[dict[str, Any], list[tuple[Path, dict[str, Any]]]]:
    """The profile's settings over the defaults, `extends` followed; ${VAR} references not resolved."""
    path = resolve_path(name_or_path)
    chain, seen = [], set()
    while True:
        if path.resolve() in seen:
            raise SetupError(f"profile {path}: 'extends' loops back to itself")
        seen.add(path.resolve())
        raw = _read(path)
        chain.append((path, raw))
        parent = raw.get("extends")
        if not parent:
            break
        path = resolve_path(parent) if not Path(parent).is_absolute() else Path(parent)
    data = copy.deepcopy(DEFAULTS)
    for path_i, raw in reversed(chain):
        data = _merge(data, raw, "", str(path_i))
    return data, chain


def load(name_or_path: str) -> Profile:
    """Load a profile by name (fixtures/environments/NAME.toml) or path, following `extends`."""
    data, chain = _merged(name_or_path)
    source = str(chain[0][0])
    _literal_secrets(chain[0][1], source, data["kind"])
    _check_types(data, source)
    data = _substitute(data, source)
    if data["tls"]["ca_file"] and not Path(data["tls"]["ca_file"]).is_file():
        raise SetupError(f"profile {source}: 'tls.ca_file' {data['tls']['ca_file']} is not a readable file")
    data["name"] = data["name"] or chain[0][0].stem
    return Profile.from_dict(data, source)
