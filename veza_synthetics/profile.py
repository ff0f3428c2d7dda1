"""Environment profiles (TOML): endpoints, credentials as ${VAR} references, limits, permissions."""
from __future__ import annotations

import copy
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .catalog import load as load_catalog
from .errors import SetupError

ENV_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "environments"
VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
SECRET_KEYS = ("password", "secret", "user_password", "admin_password")

# Every setting a profile may hold, with its default and therefore its type.
DEFAULTS: dict = {
    "name": "", "kind": "live", "allow": "readonly", "location": "local", "extends": "",
    "backend": {"url": "", "health_path": "/health", "ready_path": "/ready"},
    "chat": {"url": "", "health_url": "", "auth": "token", "broadcast": True},
    "stream": {"url": "", "secret": "", "canary_track_id": 0, "canary": "canary", "quality": "medium",
               "content_type_required": True},  # False for the variant that omits it
    "postgres": {"host": "", "port": 5432, "dbname": "veza_db", "user": "", "password": "", "sslmode": "prefer"},
    "redis": {"url": "", "password": ""},
    "prometheus": {"url": "", "rate_window": "5m"},
    "accounts": {"user_email": "", "user_password": "", "admin_email": "", "admin_password": ""},
    "timeouts": {"connect_s": 3.0, "request_s": 5.0, "stream_read_s": 10.0, "stream_s": 90.0, "ws_s": 5.0},
    "holds": {"session_s": 5.0, "ws_idle_s": 60.0},
    "sampling": {"requests": 200, "concurrency": 8, "chat_messages": 50, "db_connects": 5, "search_calls": 10},
    "auth": {"expires_in_s": 0, "session_store": "redis"},
    "thresholds": {},
    "sandbox": {"admin_url": ""},
}
KINDS, ALLOWS = ("live", "sandbox"), ("readonly", "writes")


@dataclass(frozen=True)
class Profile:
    data: dict
    source: str

    def __getitem__(self, section: str):
        return self.data[section]

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def allows_writes(self) -> bool:
        return self.data["allow"] == "writes"

    def has(self, section: str) -> bool:
        return bool(self.data[section].get("url") or self.data[section].get("host"))

    def secrets(self) -> list[str]:
        """Every secret value the profile resolved, for redaction."""
        found = []
        for section in self.data.values():
            if isinstance(section, dict):
                found += [str(v) for k, v in section.items() if k in SECRET_KEYS and v]
        return found

    def threshold_overrides(self, symptom_id: str) -> dict:
        return self.data["thresholds"].get(symptom_id, {})

    def endpoints(self) -> dict[str, str]:
        """Target addresses for reports (credentials in URLs are redacted by the report writers)."""
        pg = self.data["postgres"]
        out = {s: self.data[s]["url"] for s in ("backend", "chat", "stream", "redis", "prometheus") if self.data[s]["url"]}
        if pg["host"]:
            out["postgres"] = f"{pg['host']}:{pg['port']}/{pg['dbname']}"
        return out


def resolve_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    return ENV_DIR / f"{name_or_path}.toml"


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(sorted(p.stem for p in ENV_DIR.glob("*.toml")))
        raise SetupError(f"profile {path}: not found (known profiles: {names})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SetupError(f"profile {path}: not valid TOML: {exc}") from None


def _merge(base: dict, over: dict, where: str, source: str) -> dict:
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


def _check_types(data: dict, source: str) -> None:
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
    for name in DEFAULTS["timeouts"]:
        if data["timeouts"][name] <= 0:
            raise SetupError(f"profile {source}: 'timeouts.{name}' must be > 0 (every network call is bounded)")
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


def _check_type(setting: str, value, default, source: str) -> None:
    expected = float if isinstance(default, float) else type(default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) if expected is float else isinstance(value, expected)
    if expected is int and isinstance(value, bool):
        ok = False
    if not ok:
        raise SetupError(f"profile {source}: '{setting}' must be {expected.__name__}, not {type(value).__name__} ({value!r})")


def _substitute(data: dict, source: str) -> dict:
    missing: list[str] = []

    def walk(node, path):
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in node.items()}
        if isinstance(node, str):
            def value(match):
                var = match.group(1)
                got = os.environ.get(var)
                if not got:
                    missing.append(f"{var} (for {path}{', set but empty' if got == '' else ''})")
                    return ""
                return got
            return VAR.sub(value, node)
        return node

    out = walk(data, "")
    if missing:
        raise SetupError(f"profile {source}: missing environment variable(s): " + "; ".join(missing))
    return out


def _literal_secrets(raw: dict, source: str, kind: str) -> None:
    if kind == "sandbox":
        return  # the sandbox's own throwaway credentials, made per run
    for section, body in raw.items():
        if isinstance(body, dict):
            for key, value in body.items():
                if key in SECRET_KEYS and value and not VAR.fullmatch(str(value)):
                    raise SetupError(f"profile {source}: '{section}.{key}' holds a literal secret; "
                                     f"reference an environment variable instead, e.g. \"${{VEZA_{key.upper()}}}\"")


def load(name_or_path: str) -> Profile:
    """Load a profile by name (fixtures/environments/NAME.toml) or path, following `extends`."""
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
    source = str(chain[0][0])
    _literal_secrets(chain[0][1], source, data["kind"])
    _check_types(data, source)
    data = _substitute(data, source)
    data["name"] = data["name"] or chain[0][0].stem
    return Profile(data=data, source=source)
