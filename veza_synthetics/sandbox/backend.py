"""The sandbox's backend API, written to veza-contract.md (JWT auth, PostgreSQL, Redis), in the shape of the
variant it serves: the contract's, or the public code's with its dev or production server. Accounts and
sessions are backend_auth.py's; the middleware chain is middleware.py's, composed here per variant."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import redis.asyncio as aioredis
from prometheus_client import generate_latest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp

from . import middleware as layers
from .answers import InstanceMetrics, error, metrics_of, ok, sign_stream
from .backend_auth import Auth, RedisSessions, TableSessions
from .backend_chat import BackendChat
from .limits import B11_LIMIT, B11_WINDOW_S, ProductionLimits, SlidingLimit
from .serving import open_pool, renew_pool
from .state import SandboxState
from .variants import SHAPES

DEPLOYED_TRACK = {"id": 1, "title": "Sample Track", "artist": "Sample Artist", "filename": "sample.mp3"}  # B13
DEPLOYED_SEARCH: dict[str, list[Any]] = {"tracks": [], "resources": [], "users": [], "listings": []}  # a stub: no database (B13)
SKEW_S = 600  # auth.clock_skew: the backend's clock runs 10 min ahead
UNTRACED_PATHS = {"/api/health", "/health", "/ready", "/metrics"}  # the public code sets no X-Request-ID there (B4)
# What any user does without changing data: not counted as writes by the safety recorder.
SESSION_PATHS = {"/api/v1/auth/login", "/api/v1/auth/refresh", "/auth/refresh", "/api/v1/auth/logout"}

SEARCH_FAST = ("SELECT id, title, artist, duration_s, stream_name FROM tracks "
               "WHERE lower(title) LIKE lower(%s) || '%%' ORDER BY id LIMIT 20")
# db.slow_queries: no index, and a plan that costs ~150 ms per call
SEARCH_SLOW = ("WITH slow AS (SELECT pg_sleep(0.15)) SELECT id, title, artist, duration_s, stream_name "
               "FROM tracks, slow WHERE lower(title) LIKE '%%' || lower(%s) || '%%' ORDER BY id LIMIT 20")


class Backend:
    def __init__(self, state: SandboxState):
        self.s = state
        # the deployed variants' B11, one count for every instance, and the production server's B12
        self.limit = SlidingLimit(B11_LIMIT, B11_WINDOW_S / state.time_scale)
        self.production_limits = ProductionLimits(state.time_scale)
        self.started = time.time()
        self._pool: AsyncConnectionPool[Any] | None = None
        self._redis: aioredis.Redis[bytes] | None = None
        self.shape = shape = SHAPES[state.variant]
        sessions = TableSessions(lambda: self.pool) if shape.sessions_in_table else RedisSessions(lambda: self.redis)
        self.auth = Auth(state, lambda: self.pool, sessions, self.now, shape.token_type)

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            raise RuntimeError("the backend is not open")
        return self._pool

    @property
    def redis(self) -> aioredis.Redis[bytes]:
        if self._redis is None:
            raise RuntimeError("the backend is not open")
        return self._redis

    async def open(self) -> None:
        self._pool = await open_pool(self.s.app_dsn, 4, 8)
        # no retries of its own (redis-py 8 retries three times with backoff, ~4 s on a refused port): what a
        # Redis outage costs a request is the twin's to say (B14)
        self._redis = aioredis.Redis(host="127.0.0.1", port=self.s.redis_port, password=self.s.redis_password,
                                    socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))

    async def reconnect_database(self) -> None:
        self._pool = await renew_pool(self._pool, self.s.app_dsn, 4, 8)

    async def close(self) -> None:
        if self._pool:
            await self._pool.close(timeout=2)
        if self._redis:
            await self._redis.aclose()  # type: ignore[attr-defined]  # redis 5's name; its stubs lag

    def now(self) -> float:
        return time.time() + (SKEW_S if self.s.faults.on("auth.clock_skew") else 0)

    async def open_sessions(self, user_agent: str | None = None) -> int:
        return await self.auth.open_sessions(user_agent)

    def asgi(self, instance: str) -> ASGIApp:
        """One instance's app: the same API and database, its own name (X-Veza-Instance), metrics and
        middleware chain, and the faults that hit a single instance behind the load balancer (the second one)."""
        s, shape = self.s, self.shape
        chat = [WebSocketRoute("/ws/chat", BackendChat(self.auth.decode, s.backend_chat_sent).endpoint)]
        api = Starlette(routes=[*self.routes(), *(chat if shape.own_chat else [])])  # C6: one hub per instance
        chain = [layers.stamped(instance, self.now, lambda path: shape.ids_on_health or path not in UNTRACED_PATHS),
                 layers.measured(InstanceMetrics(), api), layers.logged(instance, lambda: s.backend_log),
                 layers.recorded(s.write_requests, SESSION_PATHS)]
        if shape.production_limits:  # its Redis script before every handler (B14)
            chain.append(layers.limiter_script(lambda: self.redis))
        if shape.public_limit:  # both public servers' B11
            chain.append(layers.public_limit(self.limit, s.throttled))
        if shape.production_limits:  # and the production server's own B12
            chain.append(layers.production_limits(self.production_limits, s.throttled))
        chain.append(layers.faulty(s.faults, odd_one_out=instance == "backend-2"))
        return layers.chain(api, chain)

    def routes(self) -> list[Route]:
        auth, shape = self.auth, self.shape
        return [
            Route(shape.health_path, self.health),
            *([Route("/ready", self.ready)] if shape.ready else []),
            Route("/metrics", self.metrics),
            Route("/api/v1/auth/login", auth.login, methods=["POST"]),
            Route("/api/v1/auth/refresh", auth.refresh, methods=["POST"]),
            *([Route("/auth/refresh", auth.refresh, methods=["POST"])] if shape.legacy_refresh else []),
            Route("/api/v1/auth/logout", auth.logout, methods=["POST"]),
            Route("/api/v1/auth/me", auth.me),
            *[Route(f"/api/v1/admin/{name}", self.admin_stats) for name in shape.admin_routes],
            *([Route("/api/v1/tracks", self.tracks), Route("/api/v1/tracks/{id:int}", self.track),
               Route("/api/v1/tracks/{id:int}/stream-url", self.stream_url)] if shape.real_data else
              [Route("/api/v1/tracks", self.sample_tracks), Route("/api/v1/tracks/{id:int}", self.sample_track)]),
            Route("/api/v1/search", self.search),
            Route("/api/v1/playlists", self.create_playlist, methods=["POST"]),
            Route("/api/v1/playlists/{id:int}", self.delete_playlist, methods=["DELETE"]),
        ]

    # -- health ------------------------------------------------------------------------
    async def _component_status(self) -> tuple[str, str]:
        async def db() -> None:
            async with self.pool.connection(timeout=1) as conn:
                await conn.execute("SELECT 1")

        async def rds() -> None:
            await self.redis.ping()

        results = []
        for probe in (db, rds):
            try:
                await asyncio.wait_for(probe(), 1.5)
                results.append("ok")
            except Exception as exc:  # the health endpoint reports any failure as text
                results.append(f"error: {type(exc).__name__}" + (f": {str(exc)[:120]}" if str(exc) else ""))
        return results[0], results[1]

    async def health(self, request: Request) -> Response:
        database, redis_status = await self._component_status()
        body, up = self.shape.health(database, redis_status, int(self.now()), time.time() - self.started)
        return JSONResponse({"status": "healthy" if up else "unhealthy", **body}, status_code=200 if up else 503)

    async def ready(self, request: Request) -> Response:
        database, redis_status = await self._component_status()
        if database == "ok" and redis_status == "ok":
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not_ready", "reason": f"database {database}; redis {redis_status}"}, 503)

    async def metrics(self, request: Request) -> Response:
        if not self.shape.prometheus_text:  # JSON: nothing of the public code exports Prometheus's text (B3)
            return JSONResponse({"goroutines": 6, "memory_alloc": 2228472, "memory_sys": 13138184,
                                 "timestamp": int(self.now())})

        async def count_sessions() -> int:
            return sum([1 async for _ in self.redis.scan_iter(match="veza:session:*", count=500)])
        try:  # bounded, so a dead Redis never makes the scrape itself time out
            metrics_of(request).active_sessions.set(await asyncio.wait_for(count_sessions(), 0.3))
        except Exception:  # nosec B110  # Redis down: the gauge keeps its last value
            pass
        return Response(generate_latest(metrics_of(request).registry), media_type="text/plain; version=0.0.4")

    # -- admin and data ----------------------------------------------------------------
    async def admin_stats(self, request: Request) -> Response:
        claims = await self.auth.authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        if claims["role"] != "admin":
            return error("Insufficient permissions", 403, field=self.shape.refusal_field)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tracks)")
            users, tracks = await cur.fetchone()
        return ok({"users": users, "tracks": tracks})

    @staticmethod
    def _track(row: tuple[Any, ...]) -> dict[str, Any]:
        return {"id": row[0], "title": row[1], "artist": row[2], "duration_s": row[3], "stream_name": row[4],
                "qualities": ["high", "medium", "low", "mobile"]}

    async def tracks(self, request: Request) -> Response:
        limit = max(1, min(int(request.query_params.get("limit", 20)), 100))
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, title, artist, duration_s, stream_name FROM tracks ORDER BY id LIMIT %s",
                                     (limit,))
            return ok([self._track(r) for r in await cur.fetchall()])

    async def track(self, request: Request) -> Response:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, title, artist, duration_s, stream_name FROM tracks WHERE id = %s",
                                     (request.path_params["id"],))
            row = await cur.fetchone()
        return ok(self._track(row)) if row else error("track not found", 404)

    async def sample_tracks(self, request: Request) -> Response:
        return ok([DEPLOYED_TRACK], message="Tracks retrieved successfully")

    async def sample_track(self, request: Request) -> Response:
        return ok(DEPLOYED_TRACK, message="Track retrieved successfully")

    async def stream_url(self, request: Request) -> Response:
        claims = await self.auth.authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT stream_name FROM tracks WHERE id = %s", (request.path_params["id"],))
            row = await cur.fetchone()
        if row is None:
            return error("track not found", 404)
        quality = request.query_params.get("quality", "medium")
        expires = int(time.time()) + 300
        sig = sign_stream(row[0], expires, self.s.stream_secret)
        url = f"{self.s.stream_url}/stream/{row[0]}?expires={expires}&sig={sig}&quality={quality}"
        return ok({"url": url, "expires": expires})

    async def search(self, request: Request) -> Response:
        if not self.shape.real_data:
            return ok(DEPLOYED_SEARCH)
        text = request.query_params.get("q", "")
        sql = SEARCH_SLOW if self.s.faults.on("db.slow_queries") else SEARCH_FAST
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, (text,))
            return ok([self._track(r) for r in await cur.fetchall()])

    async def create_playlist(self, request: Request) -> Response:
        claims = await self.auth.authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        try:
            name = str((await request.json())["name"])
        except Exception:
            return error("name is required", 400)
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute("INSERT INTO playlists (owner_id, name) VALUES (%s, %s) RETURNING id",
                                         (claims["user_id"], name))
                (pid,) = await cur.fetchone()
        except psycopg.errors.UniqueViolation:
            if self.s.faults.on("db.constraint_violation"):
                return error("Internal server error", 500)
            return error("playlist already exists", 409)
        return ok({"id": pid, "name": name}, status=201)

    async def delete_playlist(self, request: Request) -> Response:
        claims = await self.auth.authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM playlists WHERE id = %s AND owner_id = %s",
                                     (request.path_params["id"], claims["user_id"]))
            deleted = cur.rowcount
        return Response(status_code=204) if deleted else error("playlist not found", 404)
