"""Environment profiles (TOML): endpoints, credentials as ${VAR} references, limits, permissions.

Loading and validation live here; the typed model is profile_model.py, its sections (every setting, its default) settings.py.
"""
from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from .catalog import load as load_catalog
from .errors import SetupError
from .profile_model import (
    ALLOWS,
    DEFAULTS,
    ENV_DIR,
    KINDS,
    POSITIVE,
    SANDBOX_VARIANTS,
    SECRET_KEYS,
    VAR,
    ZERO_MEANS_NONE,
    Profile,
)
from .settings import History, Holds, Postgres

__all__ = ["ENV_DIR", "SANDBOX_VARIANTS", "History", "Postgres",
           "Profile", "load", "quorum_of", "resolve_path", "seconds", "unresolved"]


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
        if isinstance(out.get(key), dict) and key in FREE_TABLES:  # keys of its own: a profile adds to its base's
            if not isinstance(value, dict):
                raise SetupError(f"profile {source}: '{where}.{key}' must be a table")
            out[key] = {**out[key], **value}
        elif isinstance(out.get(key), dict) and key != "thresholds":
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
    _check_values(data, source)
    _check_thresholds(data["thresholds"], source)


def _check_values(data: dict[str, Any], source: str) -> None:
    """Values of the right type a probe still cannot use: unknown kinds, empty selectors, counts of 0."""
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
    _check_positive(data, source)
    _check_deadline(data, source)
    _check_paths(data, source)
    if not 1 <= data["auth"]["max_logins_per_run"] <= 2:
        raise SetupError(f"profile {source}: 'auth.max_logins_per_run' must be 1 (the synthetic user only) or 2 (and the "
                         f"admin), not {data['auth']['max_logins_per_run']!r}: Veza locks an address out after 3 logins")
    _check_serve(data["serve"], source)
    _check_tracing(data["tracing"], source)
    if data["quorum"] < 0:
        raise SetupError(f"profile {source}: 'quorum' must be >= 0 (0 means a majority), not {data['quorum']!r}")
    if not data["chat"]["delivered_type"]:
        raise SetupError(f"profile {source}: 'chat.delivered_type' must name the frame type a member receives a "
                         "message as (e.g. \"NewMessage\"), not empty")


# URL paths a check appends to a base URL; those that may be "" say the platform has no such route.
URL_PATHS = {"backend.health_path": False, "backend.ready_path": True, "backend.search_path": True,
             "auth.forbidden_path": False}


def _check_paths(data: dict[str, Any], source: str) -> None:
    for setting, may_be_empty in URL_PATHS.items():
        section, name = setting.split(".")
        value = data[section][name]
        if not (value.startswith("/") or (may_be_empty and value == "")):
            raise SetupError(f"profile {source}: '{setting}' must be a path starting with '/' (e.g. "
                             f"{DEFAULTS[section][name]!r}){' or empty for none' if may_be_empty else ''}, "
                             f"not {value!r}")


def _check_tracing(tracing: dict[str, Any], source: str) -> None:
    endpoint = str(tracing["otlp_endpoint"])
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise SetupError(f"profile {source}: 'tracing.otlp_endpoint' must be an OTLP/HTTP collector's http:// or "
                         f"https:// base address (e.g. \"http://collector:4318\"), or \"\" for none, not {endpoint!r}")
    if not _seconds(tracing["export_timeout_s"], 0.1):
        raise SetupError(f"profile {source}: 'tracing.export_timeout_s' must be seconds >= 0.1, "
                         f"not {tracing['export_timeout_s']!r}")
    for name, value in tracing["otlp_headers"].items():
        if not isinstance(value, str):
            raise SetupError(f"profile {source}: 'tracing.otlp_headers.\"{name}\"' must be a string (a token: "
                             f"\"${{VAR}}\"), not {value!r}")


SERVE_REPORT = ("on", "loopback", "off")
FREE_TABLES = ("intervals", "otlp_headers")  # tables whose keys are the profile's own (serve.intervals, tracing.otlp_headers)


def _check_serve(serve: dict[str, Any], source: str) -> None:
    catalog = load_catalog()
    if not isinstance(serve["interval_s"], (int, float)) or serve["interval_s"] <= 0:
        raise SetupError(f"profile {source}: 'serve.interval_s' must be > 0 (seconds between rounds), "
                         f"not {serve['interval_s']!r}")
    known = sorted({s.category for s in catalog.symptoms.values()}) + sorted(catalog.symptoms)
    for key, value in serve["intervals"].items():
        if key not in known:
            raise SetupError(f"profile {source}: 'serve.intervals.\"{key}\"' is neither a category nor a check id "
                             f"(known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise SetupError(f"profile {source}: 'serve.intervals.\"{key}\"' must be seconds > 0, not {value!r}")
    _check_budgets(serve, source)
    if serve["external_url"] and not str(serve["external_url"]).startswith(("http://", "https://")):
        raise SetupError(f"profile {source}: 'serve.external_url' must be an http:// or https:// address, "
                         f"not {serve['external_url']!r}")
    if serve["report"] not in SERVE_REPORT:
        raise SetupError(f"profile {source}: 'serve.report' must be one of {', '.join(SERVE_REPORT)}, "
                         f"not {serve['report']!r}")


def _seconds(value: Any, least: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= least


def _check_budgets(serve: dict[str, Any], source: str) -> None:
    if not _seconds(serve["window_s"], 0):
        raise SetupError(f"profile {source}: 'serve.window_s' must be seconds >= 0 (0: each round's sample alone), "
                         f"not {serve['window_s']!r}")
    for count, window in (("max_logins", "login_window_s"), ("max_refreshes", "refresh_window_s"),
                          ("max_requests", "request_window_s")):
        if isinstance(serve[count], bool) or not isinstance(serve[count], int) or serve[count] < 1:
            raise SetupError(f"profile {source}: 'serve.{count}' must be a whole number >= 1, not {serve[count]!r}")
        if not _seconds(serve[window], 0) or serve[window] == 0:
            raise SetupError(f"profile {source}: 'serve.{window}' must be seconds > 0, not {serve[window]!r}")


def _check_deadline(data: dict[str, Any], source: str) -> None:
    """The run's deadline holds every hold twice (a failed attempt's confirmation holds again)."""
    holds, run_s = Holds(**data["holds"]), data["timeouts"]["run_s"]
    longest = max(holds.ws_hold_s, holds.session_s)
    if run_s < 2 * longest:
        raise SetupError(f"profile {source}: 'timeouts.run_s' = {run_s:g} s cannot hold a {longest:g} s hold twice (a "
                         f"failure's confirmation holds again): raise it to {2 * longest:g} s or more")


def _check_positive(data: dict[str, Any], source: str) -> None:
    for section, why in POSITIVE.items():
        for name in DEFAULTS[section]:
            setting, value = f"{section}.{name}", data[section][name]
            if setting in ZERO_MEANS_NONE and value < 0:
                raise SetupError(f"profile {source}: '{setting}' must be >= 0 (0: none), not {value!r}")
            if setting not in ZERO_MEANS_NONE and value <= 0:
                raise SetupError(f"profile {source}: '{setting}' must be > 0 ({why}), not {value!r}")


def _check_thresholds(thresholds: dict[str, Any], source: str) -> None:
    symptoms = load_catalog().symptoms
    for sid, overrides in thresholds.items():
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
    tracing = raw.get("tracing")
    headers = tracing.get("otlp_headers") if isinstance(tracing, dict) else None
    for name, value in headers.items() if isinstance(headers, dict) else ():
        if value and not VAR.search(str(value)):
            raise SetupError(f"profile {source}: 'tracing.otlp_headers.\"{name}\"' holds a literal value; a collector's "
                             f"token comes from an environment variable, e.g. \"Bearer ${{OTLP_TOKEN}}\"")


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
