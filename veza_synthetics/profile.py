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

from .errors import SetupError
from .profile_model import (
    DEFAULTS,
    ENV_DIR,
    SANDBOX_VARIANTS,
    SECRET_KEYS,
    VAR,
    Profile,
)
from .profile_rules import check_thresholds, check_values, seconds
from .settings import History, Postgres

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
    check_values(data, source)
    check_thresholds(data["thresholds"], source)


FREE_TABLES = ("intervals", "otlp_headers")  # tables whose keys are the profile's own (serve.intervals, tracing.otlp_headers)


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
