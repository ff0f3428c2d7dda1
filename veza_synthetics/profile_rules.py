"""What a profile's values must satisfy once their types are right: each broken rule one error naming the
setting and what it must be (kinds, paths, durations, budgets, the run's deadline, thresholds, tracing)."""
from __future__ import annotations

import re
from typing import Any

from .catalog import load as load_catalog
from .errors import SetupError
from .profile_model import ALLOWS, DEFAULTS, KINDS, POSITIVE, ZERO_MEANS_NONE
from .settings import Holds


def check_values(data: dict[str, Any], source: str) -> None:
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
    if not _seconds(serve["retry_interval_s"], 0):
        raise SetupError(f"profile {source}: 'serve.retry_interval_s' must be seconds >= 0 (0: a failed check waits "
                         f"for its interval), not {serve['retry_interval_s']!r}")
    if isinstance(serve["auth_calls"], bool) or not isinstance(serve["auth_calls"], int) or serve["auth_calls"] < 1:
        raise SetupError(f"profile {source}: 'serve.auth_calls' must be a whole number >= 1, not {serve['auth_calls']!r}")
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


def check_thresholds(thresholds: dict[str, Any], source: str) -> None:
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


def seconds(duration: str) -> float:
    """A Prometheus duration ("5s", "5m", "1h30m") in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise SetupError(f"not a Prometheus duration: {duration!r} (e.g. 5m, 30s)")
    unit_s = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * unit_s[u] for n, u in parts)
