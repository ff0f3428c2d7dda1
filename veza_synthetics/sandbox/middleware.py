"""The backend's middleware, a chain of small ASGI layers, each one job: ids and headers, the request log, the
metrics, the safety recorder, the public code's rate limits, the faults that act per request. Backend.asgi
composes the chain each variant has."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .answers import error
from .limits import RATE_LIMITED, TOO_MANY, ProductionLimits, SlidingLimit, client_address

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from .answers import InstanceMetrics
    from .faults import Faults

Middleware = Callable[[ASGIApp], ASGIApp]
# What a layer does with one HTTP request: answer it, or hand it on to `app` (websockets pass through untouched).
Step = Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]]
# The production server's rate-limit script (B14): a counter per client address and window, in Redis.
LIMITER_SCRIPT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"
REDIS_DOWN_DELAY_S = 0.5  # what a failed script costs each request there (B14, measured by hand)


def chain(app: ASGIApp, layers: list[Middleware]) -> ASGIApp:
    """The first layer outermost: it sees the request first and the answer last."""
    for layer in reversed(layers):
        app = layer(app)
    return app


def http_layer(step: Step) -> Middleware:
    def wrap(app: ASGIApp) -> ASGIApp:
        async def layer(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            await step(scope, receive, send, app)
        return layer
    return wrap


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def stamped(instance: str, now: Callable[[], float], echoes_id: Callable[[str], bool]) -> Middleware:
    """The request's id (the client's X-Request-ID, else a new one) in the scope for the log, echoed where the
    variant echoes it; the instance's name (X-Veza-Instance) and its clock (Date) on every answer."""
    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        request_id = _headers(scope).get(b"x-request-id", b"").decode() or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        echoed = [(b"x-request-id", request_id.encode())] if echoes_id(scope["path"]) else []

        async def stamp(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *echoed, (b"x-veza-instance", instance.encode()),
                                      (b"date", formatdate(now(), usegmt=True).encode())]
            await send(message)
        await app(scope, receive, stamp)
    return http_layer(step)


def _status_kept(send: Send, held: dict[str, int]) -> Send:
    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            held["status"] = message["status"]
        await send(message)
    return keep


def logged(instance: str, log_path: Callable[[], str]) -> Middleware:
    """One line per request, ids included, as the platform's own request log has them (500 when no answer
    started)."""
    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        held = {"status": 500}
        try:
            await app(scope, receive, _status_kept(send, held))
        finally:
            if path := log_path():
                trace = _headers(scope).get(b"traceparent", b"").decode() or "-"
                with open(path, "a", encoding="utf-8") as log:
                    log.write(f"{dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds')} {instance} "
                              f"{scope['method']} {scope['path']} {held['status']} "
                              f"request_id={scope['state']['request_id']} traceparent={trace}\n")
    return http_layer(step)


def measured(metrics: InstanceMetrics, api: Starlette) -> Middleware:
    """The instance's request count and duration by route (its own /metrics scrape not counted); its metrics in
    the scope for the handlers and the layers within."""
    def endpoint(scope: Scope) -> str:
        for route in api.routes:
            match, _ = route.matches(scope)
            if match.name == "FULL" and isinstance(route, Route):
                return route.path
        return "other"

    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        scope.setdefault("state", {})["metrics"] = metrics
        held, started = {"status": 500}, time.perf_counter()
        try:
            await app(scope, receive, _status_kept(send, held))
        finally:
            route = endpoint(scope)
            if route != "/metrics":
                metrics.requests.labels(scope["method"], route, str(held["status"])).inc()
                metrics.duration.labels(scope["method"], route).observe(time.perf_counter() - started)
    return http_layer(step)


def recorded(writes: list[tuple[str, str]], session_paths: set[str]) -> Middleware:
    """The safety recorder: every API call that is not a read nor a session's own, with its User-Agent."""
    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        if scope["method"] not in ("GET", "HEAD", "OPTIONS") and scope["path"] not in session_paths:
            writes.append((f"{scope['method']} {scope['path']}", _headers(scope).get(b"user-agent", b"").decode()))
        await app(scope, receive, send)
    return http_layer(step)


def limiter_script(redis: Callable[[], aioredis.Redis[bytes]]) -> Middleware:
    """The production server runs its rate-limit Lua script in Redis before every handler. With Redis down the
    script fails, the request goes on, about half a second later (B14, measured against the real server); the
    counts themselves are the in-memory twin's (ProductionLimits)."""
    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        key = f"veza:ratelimit:{client_address(_headers(scope), scope.get('client'))}"
        try:
            await redis().eval(LIMITER_SCRIPT, 1, key, "60")  # type: ignore[no-untyped-call]  # redis-py: untyped
        except (RedisError, OSError):
            await asyncio.sleep(REDIS_DOWN_DELAY_S)
        await app(scope, receive, send)
    return http_layer(step)


def public_limit(limit: SlidingLimit, throttled: Counter[str]) -> Middleware:
    """B11, both servers: above the limit, 429 in the public code's words, without Retry-After; each counted."""
    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        client = client_address(_headers(scope), scope.get("client"))
        if limit.admit(client, time.monotonic()):
            return await app(scope, receive, send)
        throttled[client] += 1
        await JSONResponse(TOO_MANY, status_code=429)(scope, receive, send)
    return http_layer(step)


def production_limits(limits: ProductionLimits, throttled: Counter[str]) -> Middleware:
    """B12, the production server's: every rule the request matches, and the ban; 429 with Retry-After."""
    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        client = client_address(_headers(scope), scope.get("client"))
        refused = limits.refuse(client, scope["method"], scope["path"], time.monotonic())
        if refused is None:
            return await app(scope, receive, send)
        throttled[client] += 1
        await JSONResponse(RATE_LIMITED, status_code=429, headers={"Retry-After": str(refused[1])})(scope, receive, send)
    return http_layer(step)


def faulty(faults: Faults, odd_one_out: bool) -> Middleware:
    """What the faults make of a request: the second instance's own errors (front.*), then the API's latency,
    hangs and errors; an answer, or the request handed on after any delay they add."""
    async def answer(scope: Scope) -> JSONResponse | None:
        path = scope["path"]
        if odd_one_out and path != "/metrics":
            if faults.on("front.instance_errors"):
                return error("Internal server error", 500)
            if faults.on("front.instance_rejects_tokens") and b"authorization" in _headers(scope):
                scope["state"]["metrics"].auth_failures.labels("invalid_signature").inc()
                return error("Invalid token: signature verification failed", 401)
        if not path.startswith("/api/"):
            return None
        if faults.on("perf.latency"):
            await asyncio.sleep(faults.param("perf.latency"))
        if faults.one_in("perf.hang", 10):
            await asyncio.sleep(30)
        return error("Internal server error", 500) if faults.one_in("perf.errors", 20) else None

    async def step(scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        await (await answer(scope) or app)(scope, receive, send)
    return http_layer(step)
