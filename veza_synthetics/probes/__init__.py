"""Probes: one module per protocol, one shape for all (blackbox_exporter's prober/).

A probe measures and returns a Result: measurements, evidence, and the error that kept
it from measuring (unreachable, timeout, bad response). It never decides pass or fail:
that is the verdict's job.
"""
from __future__ import annotations

import functools
import math
import ssl
from dataclasses import dataclass, field

import certifi


@dataclass
class Result:
    probe: str                      # "http", "auth", "websocket", "stream", "postgres", "redis", "prometheus"
    target: str                     # what was probed (an URL or host:port, never with credentials)
    measurements: dict = field(default_factory=dict)
    evidence: dict = field(default_factory=dict)
    error: str | None = None        # why it could not measure: "unreachable: ...", "timeout after 2 s", ...
    handle: object = field(default=None, repr=False)  # what later steps reuse (a session); never reported


@functools.lru_cache(maxsize=1)
def tls() -> ssl.SSLContext:
    """One verifying TLS context for every HTTP probe (building one costs ~50 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


def describe(exc: BaseException, timeout_s: float | None = None) -> str:
    """A one-line reason an SRE can act on, from any network exception."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else name
    lowered = f"{name} {text}".lower()
    if "invalid response" in lowered or "protocol error" in lowered:
        return f"bad response: {text}"
    if isinstance(exc, ssl.SSLError) or "certificate" in lowered or "ssl" in lowered:
        return f"TLS error: {text}"
    if "timeout" in lowered or "timed out" in lowered:
        return f"timeout after {timeout_s:g} s" if timeout_s else f"timeout: {text}"
    if any(w in lowered for w in ("refused", "connecterror", "unreachable", "name or service", "no route",
                                  "connection reset", "oserror", "could not connect", "connection failed")):
        return f"unreachable: {text}"
    return f"bad response: {name}: {text}"


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), q in 0..100; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values_ms: list[float]) -> dict:
    return {"n": len(values_ms), "p50_ms": _r(percentile(values_ms, 50)), "p95_ms": _r(percentile(values_ms, 95)),
            "p99_ms": _r(percentile(values_ms, 99)), "max_ms": _r(max(values_ms) if values_ms else None)}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
