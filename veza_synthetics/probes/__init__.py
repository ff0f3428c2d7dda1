"""Probes: one module per protocol, one shape for all (blackbox_exporter's prober/).

A probe measures and returns a Result: measurements, evidence, and the error that kept
it from measuring (unreachable, timeout, bad response). It never decides pass or fail:
that is the verdict's job.
"""
from __future__ import annotations

import contextvars
import functools
import math
import os
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import certifi
import httpx
import psycopg
import websockets.exceptions
from redis import exceptions as redis_errors


@dataclass
class Result:
    """What one probe call measured. Probes that hand something to later steps subclass it with a
    typed field (auth.ApiResult's body, auth.LoginResult's session, prometheus.QueryResult's series)."""
    probe: str                      # "http", "auth", "websocket", "stream", "postgres", "redis", "prometheus"
    target: str                     # what was probed (an URL or host:port, never with credentials)
    measurements: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None        # why it could not measure: "unreachable: ...", "timeout after 2 s", ...


@functools.cache
def verifying_context(ca_file: str) -> ssl.SSLContext:
    """A verifying TLS context (building one costs ~50 ms, so once per CA file): the public CAs, plus
    SSL_CERT_FILE where it is set (as curl and OpenSSL honour it), plus a private CA where one is named."""
    context = ssl.create_default_context(cafile=certifi.where())
    if os.environ.get("SSL_CERT_FILE"):
        context.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80, "redis": 6379, "rediss": 6379}


def address(url: str) -> str:
    """host:port of a URL (its scheme's port where it names none)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or DEFAULT_PORTS.get(parts.scheme, 80)}"


_per_thread = threading.local()


def browser(context: ssl.SSLContext) -> httpx.Client:
    """One keep-alive client per thread and trust: checks measuring in the background never share a
    cookie jar, and an endpoint's private CA never verifies another's."""
    clients: dict[int, httpx.Client] = _per_thread.__dict__.setdefault("clients", {})
    client = clients.get(id(context))
    if client is None:
        client = clients[id(context)] = httpx.Client(verify=context, limits=httpx.Limits(max_connections=16,
                                                                                         max_keepalive_connections=8))
    return client


NOT_CONNECTED: tuple[type[httpx.HTTPError], ...] = (httpx.ConnectError, httpx.ConnectTimeout)  # nothing was sent


class NotAnswering(httpx.TransportError, ConnectionError):
    """Not sent: the endpoint left its last exchanges unanswered (answering.py). Typed as both an HTTP
    transport error and a connection error, so every probe's handler reads it as unreachable."""


def no_answer(exc: BaseException) -> bool:
    """The endpoint gave no answer at all: a connection that never opened, or no reply in time (a PostgreSQL
    error without a SQLSTATE is one the server never sent)."""
    if isinstance(exc, psycopg.OperationalError):
        return exc.sqlstate is None
    return isinstance(exc, (httpx.ConnectError, httpx.TimeoutException, TimeoutError, ConnectionRefusedError,
                            redis_errors.ConnectionError, redis_errors.TimeoutError))


def forget_connections() -> None:
    """Close this thread's kept-alive connections."""
    clients: dict[int, httpx.Client] = _per_thread.__dict__.pop("clients", {})
    for client in clients.values():
        client.close()


T = TypeVar("T")


def at_once(jobs: dict[str, Callable[[], T]]) -> dict[str, T]:
    """Independent probes run together, each in the caller's trace (identity.py's context), so a dead
    platform costs a check its longest timeout, not their sum; results keyed as the jobs were."""
    def alone(job: Callable[[], T]) -> T:
        try:
            return job()
        finally:
            forget_connections()  # the pool's threads end: so do their kept-alive connections
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="veza-at-once") as pool:
        futures = {key: pool.submit(contextvars.copy_context().run, alone, job) for key, job in jobs.items()}
    return {key: future.result() for key, future in futures.items()}


TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, TimeoutError, redis_errors.TimeoutError,
                                             psycopg.errors.ConnectionTimeout, psycopg.errors.QueryCanceled)
BAD_ANSWERS: tuple[type[BaseException], ...] = (httpx.RemoteProtocolError, httpx.DecodingError,
                                                websockets.exceptions.InvalidHandshake, ValueError, KeyError, TypeError)
UNREACHABLE: tuple[type[BaseException], ...] = (httpx.TransportError, OSError, redis_errors.ConnectionError)


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def refusal(body: object) -> str | None:
    """A refusal's text in a JSON answer: in `error` (Veza's auth handlers, its stream server) or in
    `message` (its track, search and admin handlers, B4)."""
    text = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
    return str(text) if text else None


# SQLSTATE classes of a session that could not begin: connection, authorization, no such database,
# resources (too many connections), operator intervention (the server is starting or shutting down)
CONNECTION_CLASSES = ("08", "28", "3D", "53", "57")


def describe(exc: BaseException, timeout_s: float | None = None) -> str:
    """A one-line reason an SRE can act on, from the exception's type (never its wording)."""
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    chain = _causes(exc)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return f"TLS error: {text}"
    if isinstance(exc, TIMEOUTS):
        return f"timeout after {timeout_s:g} s" if timeout_s else f"timeout: {text}"
    if isinstance(exc, BAD_ANSWERS):
        return f"bad response: {text}"
    if isinstance(exc, UNREACHABLE):
        return f"unreachable: {text}"
    if isinstance(exc, psycopg.Error) and exc.sqlstate and exc.sqlstate[:2] not in CONNECTION_CLASSES:
        return f"query failed (SQLSTATE {exc.sqlstate}): {text}"  # connected: the server refused a statement
    if isinstance(exc, psycopg.OperationalError):  # libpq has one type for refused, wrong protocol, auth, full
        return f"could not connect: {text}"
    return f"bad response: {type(exc).__name__}: {text}"


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default), q in 0..100; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


MIN_SAMPLES = {95: 20, 99: 100}  # fewer, and the percentile is just the maximum: report the max, named so


def spread(values_ms: list[float]) -> dict[str, float | None]:
    """n, p50, p95 and p99 (None where n is too small for them), max."""
    n = len(values_ms)
    return {"n": n, "p50_ms": _r(percentile(values_ms, 50)),
            "p95_ms": _r(percentile(values_ms, 95)) if n >= MIN_SAMPLES[95] else None,
            "p99_ms": _r(percentile(values_ms, 99)) if n >= MIN_SAMPLES[99] else None,
            "max_ms": _r(max(values_ms) if values_ms else None)}


def decided_above(planned: int) -> int:
    """How many of `planned` values above a level put the figure spread() judges (p95, or the max under
    MIN_SAMPLES[95] values) above it whatever the other values are: a sample may stop there."""
    if planned < MIN_SAMPLES[95]:
        return 1
    return planned - math.floor((planned - 1) * 0.95)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
