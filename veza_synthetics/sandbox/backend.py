"""The sandbox's backend API, written to veza-contract.md (JWT auth, PostgreSQL, Redis)."""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import jwt
import psycopg
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from psycopg_pool import AsyncConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .backend_chat import BackendChat
from .limits import B11_LIMIT, B11_WINDOW_S, RATE_LIMITED, TOO_MANY, ProductionLimits, SlidingLimit, client_address
from .serving import open_pool, renew_pool

if TYPE_CHECKING:
    from .state import SandboxState

ACCESS_LIFETIME_S = 3600
DEPLOYED_ACCESS_LIFETIME_S = 3600  # hard-coded in the public code (B8), whatever JWT_ACCESS_TTL says
DEPLOYED_ADMIN_ROUTES = ("dashboard", "users", "analytics", "categories")  # no /admin/stats there (B7)
DEPLOYED_TRACK = {"id": 1, "title": "Sample Track", "artist": "Sample Artist", "filename": "sample.mp3"}  # B13
DEPLOYED_SEARCH: dict[str, list[Any]] = {"tracks": [], "resources": [], "users": [], "listings": []}  # a stub: no database (B13)
REFRESH_LIFETIME_S = 7 * 24 * 3600
SKEW_S = 600  # auth.clock_skew: the backend's clock runs 10 min ahead
# The production server's rate-limit script (B14): a counter per client address and window, in Redis.
LIMITER_SCRIPT = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n"
REDIS_DOWN_DELAY_S = 0.5  # what a failed script costs each request there (B14, measured by hand)
# What any user does without changing data: not counted as writes by the safety recorder.
UNTRACED_PATHS = {"/api/health", "/health", "/ready", "/metrics"}  # the public code sets no X-Request-ID there (B4)
SESSION_PATHS = {"/api/v1/auth/login", "/api/v1/auth/refresh", "/auth/refresh", "/api/v1/auth/logout"}

SEARCH_FAST = ("SELECT id, title, artist, duration_s, stream_name FROM tracks "
               "WHERE lower(title) LIKE lower(%s) || '%%' ORDER BY id LIMIT 20")
# db.slow_queries: no index, and a plan that costs ~150 ms per call
SEARCH_SLOW = ("WITH slow AS (SELECT pg_sleep(0.15)) SELECT id, title, artist, duration_s, stream_name "
               "FROM tracks, slow WHERE lower(title) LIKE '%%' || lower(%s) || '%%' ORDER BY id LIMIT 20")


def password_hash(password: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000).hex()


def sign_stream(name: str, expires: int, secret: str) -> str:
    return hmac.new(secret.encode(), f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


def ok(data: Any, status: int = 200, message: str = "ok") -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "message": message}, status_code=status)


def error(text: str, status: int, headers: dict[str, str] | None = None, field: str = "error") -> JSONResponse:
    """Veza's error answer; the public code's track, search and admin handlers put the text in `message` (B4)."""
    return JSONResponse({"success": False, field: text}, status_code=status, headers=headers)


class InstanceMetrics:
    """One backend instance's own metrics, as each process of a deployed backend has them: Prometheus sums
    the instances of the job, so they must not report each other's requests."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry()
        self.requests = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"], registry=reg)
        self.duration = Histogram("http_request_duration_seconds", "HTTP request duration", ["method", "endpoint"],
                                  registry=reg, buckets=(.005, .01, .025, .05, .1, .2, .3, .5, 1, 2.5, 5, 10))
        self.active_sessions = Gauge("veza_active_sessions", "Sessions in Redis", registry=reg)
        self.auth_failures = Counter("veza_auth_failures_total", "Authentication failures", ["reason"], registry=reg)


def metrics_of(request: Request) -> InstanceMetrics:
    """The metrics of the instance serving this request (the middleware puts them in the request's state)."""
    found: InstanceMetrics = request.state.metrics
    return found


class Backend:
    def __init__(self, state: SandboxState):
        self.s = state
        # the deployed variants' B11, one count for every instance, and the production server's B12
        self.limit = SlidingLimit(B11_LIMIT, B11_WINDOW_S / state.time_scale)
        self.production_limits = ProductionLimits(state.time_scale)
        self.started = time.time()
        self._pool: AsyncConnectionPool[Any] | None = None
        self._redis: aioredis.Redis[bytes] | None = None

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

    # -- lifecycle ---------------------------------------------------------------------
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

    # -- middleware: request id, Date, metrics, API faults ----------------------------
    def asgi(self, instance: str) -> ASGIApp:
        """One instance's app: the same API and database, its own name (X-Veza-Instance), and the
        faults that hit a single instance behind the load balancer (the second one)."""
        chat = [WebSocketRoute("/ws/chat", BackendChat(self._decode, self.s.backend_chat_sent).endpoint)]
        app = Starlette(routes=[*self.routes(), *(chat if self.s.deployed else [])])  # C6: one hub per instance
        odd_one_out = instance == "backend-2"
        metrics = InstanceMetrics()

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            path = scope["path"]
            scope.setdefault("state", {})["metrics"] = metrics
            headers = dict(scope["headers"])
            request_id = headers.get(b"x-request-id", b"").decode() or uuid.uuid4().hex
            status_holder = {"status": 500}
            started = time.perf_counter()

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_holder["status"] = message["status"]
                    message.setdefault("headers", [])
                    echoed = [] if self.s.deployed and path in UNTRACED_PATHS else [(b"x-request-id", request_id.encode())]
                    message["headers"] = [*message["headers"], *echoed, (b"x-veza-instance", instance.encode()),
                                          (b"date", formatdate(self.now(), usegmt=True).encode())]
                await send(message)

            if scope["method"] not in ("GET", "HEAD", "OPTIONS") and path not in SESSION_PATHS:
                self.s.write_requests.append((f"{scope['method']} {path}", headers.get(b"user-agent", b"").decode()))
            try:
                if self.s.production_server:
                    await self._limiter_script(headers, scope)
                answer = self._throttled(scope, headers) or \
                    await self._injected(path, b"authorization" in headers, odd_one_out, metrics)
                await (answer or app)(scope, receive, send_wrapper)
            finally:
                self._log(instance, scope, status_holder["status"], request_id, headers)
                endpoint = self._endpoint(scope, app)
                if endpoint != "/metrics":
                    metrics.requests.labels(scope["method"], endpoint, str(status_holder["status"])).inc()
                    metrics.duration.labels(scope["method"], endpoint).observe(time.perf_counter() - started)

        return middleware

    def _throttled(self, scope: Scope, headers: dict[bytes, bytes]) -> JSONResponse | None:
        """The public code's limiters in the deployed variants, each 429 counted: B11 (no Retry-After),
        then the production server's B12 (with it)."""
        if not self.s.deployed:
            return None
        client, now = client_address(headers, scope.get("client")), time.monotonic()
        answer = None
        if not self.limit.admit(client, now):
            answer = JSONResponse(TOO_MANY, status_code=429)
        elif self.s.production_server:
            refused = self.production_limits.refuse(client, scope["method"], scope["path"], now)
            if refused is not None:
                answer = JSONResponse(RATE_LIMITED, status_code=429, headers={"Retry-After": str(refused[1])})
        self.s.throttled += answer is not None
        return answer

    async def _limiter_script(self, headers: dict[bytes, bytes], scope: Scope) -> None:
        """The production server runs its rate-limit Lua script in Redis before every handler. With Redis down
        the script fails, the request goes on, about half a second later (B14, measured against the real
        server); the counts themselves are the in-memory twin's (ProductionLimits)."""
        key = f"veza:ratelimit:{client_address(headers, scope.get('client'))}"
        try:
            await self.redis.eval(LIMITER_SCRIPT, 1, key, "60")  # type: ignore[no-untyped-call]  # redis-py: untyped
        except (RedisError, OSError):
            await asyncio.sleep(REDIS_DOWN_DELAY_S)

    def _log(self, instance: str, scope: Scope, status: int, request_id: str, headers: dict[bytes, bytes]) -> None:
        """One line per request, ids included, as the platform's own request log has them."""
        if not self.s.backend_log:
            return
        trace = headers.get(b"traceparent", b"").decode() or "-"
        with open(self.s.backend_log, "a", encoding="utf-8") as log:
            log.write(f"{dt.datetime.now(dt.UTC).isoformat(timespec='milliseconds')} {instance} {scope['method']} "
                      f"{scope['path']} {status} request_id={request_id} traceparent={trace}\n")

    async def _injected(self, path: str, has_token: bool, odd_one_out: bool,
                        metrics: InstanceMetrics) -> JSONResponse | None:
        """What the faults make of this request: an error to answer with, or None (after any delay they add)."""
        faults = self.s.faults
        if odd_one_out and path != "/metrics":
            if faults.on("front.instance_errors"):
                return error("Internal server error", 500)
            if faults.on("front.instance_rejects_tokens") and has_token:
                metrics.auth_failures.labels("invalid_signature").inc()
                return error("Invalid token: signature verification failed", 401)
        if not path.startswith("/api/"):
            return None
        if faults.on("perf.latency"):
            await asyncio.sleep(faults.param("perf.latency"))
        if faults.one_in("perf.hang", 10):
            await asyncio.sleep(30)
        return error("Internal server error", 500) if faults.one_in("perf.errors", 20) else None

    @staticmethod
    def _endpoint(scope: Scope, app: Starlette) -> str:
        for route in app.routes:
            match, _ = route.matches(scope)
            if match.name == "FULL" and isinstance(route, Route):
                return route.path
        return "other"

    def routes(self) -> list[Route]:
        return [
            Route("/api/health" if self.s.dev_server else "/health", self.health),
            *([] if self.s.dev_server else [Route("/ready", self.ready)]),  # the public dev server has none (B2)
            Route("/metrics", self.metrics),
            Route("/api/v1/auth/login", self.login, methods=["POST"]),
            Route("/api/v1/auth/refresh", self.refresh, methods=["POST"]),
            *([] if self.s.deployed else [Route("/auth/refresh", self.refresh, methods=["POST"])]),  # B6
            Route("/api/v1/auth/logout", self.logout, methods=["POST"]),
            Route("/api/v1/auth/me", self.me),
            *([Route(f"/api/v1/admin/{name}", self.admin_stats) for name in DEPLOYED_ADMIN_ROUTES]
              if self.s.deployed else [Route("/api/v1/admin/stats", self.admin_stats)]),
            *([Route("/api/v1/tracks", self.sample_tracks), Route("/api/v1/tracks/{id:int}", self.sample_track)]
              if self.s.deployed else  # stubs and no stream-url route in the public code (B13)
              [Route("/api/v1/tracks", self.tracks), Route("/api/v1/tracks/{id:int}", self.track),
               Route("/api/v1/tracks/{id:int}/stream-url", self.stream_url)]),
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
        if self.s.production_server:  # 503 only for PostgreSQL; Redis down is still healthy, named (B1)
            up = database == "ok"
            return JSONResponse({"status": "healthy" if up else "unhealthy", "service": "veza-backend-api",
                                 "timestamp": int(self.now()), "uptime": f"{time.time() - self.started:.0f}s",
                                 "database": database, "redis": redis_status}, status_code=200 if up else 503)
        if self.s.deployed:  # the public dev server's /api/health: the database only, no redis, no uptime (B1)
            up = database == "ok"
            return JSONResponse({"status": "healthy" if up else "unhealthy", "service": "veza-backend-dev",
                                 "version": "2.0.0", "frontend": "react", "timestamp": int(self.now()),
                                 "database": database, "components": {"database_connected": up, "websocket_active": True}},
                                status_code=200 if up else 503)
        healthy = database == "ok" and redis_status == "ok"
        body = {"status": "healthy" if healthy else "unhealthy", "service": "veza-backend-api", "version": "sandbox",
                "timestamp": int(self.now()), "uptime_s": round(time.time() - self.started, 1),
                "database": database, "redis": redis_status,
                "components": {"database_connected": database == "ok", "redis_available": redis_status == "ok"}}
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def ready(self, request: Request) -> Response:
        database, redis_status = await self._component_status()
        if database == "ok" and redis_status == "ok":
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not_ready", "reason": f"database {database}; redis {redis_status}"}, 503)

    async def metrics(self, request: Request) -> Response:
        if self.s.deployed:  # JSON, not Prometheus text: nothing of the public code exports the latter (B3)
            return JSONResponse({"goroutines": 6, "memory_alloc": 2228472, "memory_sys": 13138184,
                                 "timestamp": int(self.now())})

        async def count_sessions() -> int:
            return sum([1 async for _ in self.redis.scan_iter(match="veza:session:*", count=500)])
        try:  # bounded, so a dead Redis never makes the scrape itself time out
            metrics_of(request).active_sessions.set(await asyncio.wait_for(count_sessions(), 0.3))
        except Exception:  # nosec B110  # Redis down: the gauge keeps its last value
            pass
        return Response(generate_latest(metrics_of(request).registry), media_type="text/plain; version=0.0.4")

    # -- auth --------------------------------------------------------------------------
    def _tokens(self, user: dict[str, Any], sid: str) -> dict[str, Any]:
        now = int(self.now())
        normal = DEPLOYED_ACCESS_LIFETIME_S if self.s.deployed else ACCESS_LIFETIME_S
        lifetime = 2 if self.s.faults.on("auth.short_ttl") else normal
        claims = {"user_id": user["id"], "username": user["username"], "role": user["role"], "sid": sid,
                  "iat": now, "exp": now + lifetime}
        access = jwt.encode(claims, self.s.jwt_secret, algorithm="HS256")
        refresh = jwt.encode({"user_id": user["id"], "sid": sid, "typ": "refresh", "iat": now,
                              "exp": now + REFRESH_LIFETIME_S}, self.s.jwt_secret, algorithm="HS256")
        tokens = {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",  # nosec B105
                  "expires_in": normal}
        if self.s.deployed:
            del tokens["token_type"]  # the public code sends none (B5)
        return tokens

    def _session_ttl(self) -> int:
        return 1 if self.s.faults.on("auth.session_eviction") else REFRESH_LIFETIME_S

    async def login(self, request: Request) -> Response:
        try:
            body = await request.json()
            email, password = str(body["email"]), str(body["password"])
        except Exception:
            return error("email and password are required", 400)
        self.s.logins[email] = self.s.logins.get(email, 0) + 1  # what a lockout counts: every attempt
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, username, email, role, password_hash, salt FROM users WHERE email = %s",
                                     (email,))
            row = await cur.fetchone()
        if row is None or not hmac.compare_digest(row[4], password_hash(password, row[5])):
            metrics_of(request).auth_failures.labels("invalid_credentials").inc()
            return error("invalid email or password", 401)
        user = {"id": row[0], "username": row[1], "email": row[2], "role": row[3]}
        sid = uuid.uuid4().hex
        self.s.session_agents[sid] = request.headers.get("user-agent", "")
        await self._open_session(sid, user["id"])
        return ok({**self._tokens(user, sid), "user": user})

    # -- sessions: in Redis (the contract) or in the refresh_tokens table (the deployed variant) ----
    async def _open_session(self, sid: str, user_id: int) -> None:
        if self.s.deployed:  # one session per account: a login ends the earlier ones (B10); epoch expiry (B9)
            async with self.pool.connection() as conn:
                await conn.execute("DELETE FROM refresh_tokens WHERE user_id = %s", (user_id,))
                await conn.execute("INSERT INTO refresh_tokens (user_id, session_id, expires_at) VALUES "
                                   "(%s, %s, extract(epoch FROM now() + make_interval(secs => %s))::bigint)",
                                   (user_id, sid, self._session_ttl()))
        else:
            await self.redis.set(f"veza:session:{sid}", json.dumps({"user_id": user_id, "created_at": int(time.time())}),
                                 ex=self._session_ttl())

    async def _session_alive(self, sid: str) -> bool:
        if self.s.deployed:
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT 1 FROM refresh_tokens WHERE session_id = %s "
                                         "AND expires_at > extract(epoch FROM now())",
                                         (sid,))
                return await cur.fetchone() is not None
        return bool(await self.redis.exists(f"veza:session:{sid}"))

    async def open_sessions(self, user_agent: str | None = None) -> int:
        """Sessions not logged out nor expired, of every client or of the one that sent this User-Agent."""
        sids = [sid for sid, agent in list(self.s.session_agents.items()) if user_agent is None or agent == user_agent]
        return sum([await self._session_alive(sid) for sid in sids])

    async def _close_session(self, sid: str) -> None:
        if self.s.deployed:
            async with self.pool.connection() as conn:
                await conn.execute("DELETE FROM refresh_tokens WHERE session_id = %s", (sid,))
        else:
            await self.redis.delete(f"veza:session:{sid}")

    def _decode(self, token: str, key: str | None = None) -> dict[str, Any]:
        return jwt.decode(token, key or self.s.jwt_secret, algorithms=["HS256"],
                          options={"verify_iat": False, "verify_exp": False})

    async def refresh(self, request: Request) -> Response:
        token = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:]
        else:
            try:
                token = (await request.json()).get("refresh_token")
            except Exception:
                token = None
        if not token:
            return error("refresh_token is required", 400)
        try:
            claims = self._decode(token)
            if claims.get("typ") != "refresh" or claims["exp"] < self.now():
                raise jwt.InvalidTokenError("not a live refresh token")
        except jwt.InvalidTokenError:
            metrics_of(request).auth_failures.labels("invalid_refresh").inc()
            return error("Invalid refresh token", 401)
        if self.s.faults.on("auth.refresh_broken"):
            metrics_of(request).auth_failures.labels("invalid_refresh").inc()
            return error("Invalid refresh token", 401)
        if not await self._session_alive(claims["sid"]):
            return error("session expired", 401)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, username, email, role FROM users WHERE id = %s", (claims["user_id"],))
            row = await cur.fetchone()
        user = {"id": row[0], "username": row[1], "email": row[2], "role": row[3]}
        tokens = self._tokens(user, claims["sid"])
        return ok({"access_token": tokens["access_token"], "expires_in": tokens["expires_in"]})

    async def logout(self, request: Request) -> Response:
        try:
            claims = self._decode((await request.json())["refresh_token"])
        except Exception:
            return error("Invalid refresh token", 401)
        await self._close_session(claims["sid"])
        return ok(None, message="logged out")

    async def _authenticate(self, request: Request) -> dict[str, Any] | JSONResponse:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return error("Authorization header required", 401)
        key = self.s.jwt_secret + ":rotated" if self.s.faults.on("auth.reject_tokens") else None
        try:
            claims = self._decode(auth[7:], key)
        except jwt.InvalidTokenError as exc:
            metrics_of(request).auth_failures.labels("invalid_token").inc()
            return error(f"Invalid token: {exc}", 401)
        if claims.get("typ") == "refresh":
            return error("Invalid token: refresh token used as access token", 401)
        if claims["exp"] < self.now():
            metrics_of(request).auth_failures.labels("expired").inc()
            return error("token expired", 401)
        if not await self._session_alive(claims["sid"]):
            metrics_of(request).auth_failures.labels("session_expired").inc()
            return error("session expired", 401)
        if self.s.faults.on("auth.forbidden") and claims["role"] != "admin":
            return error("Insufficient permissions", 403)
        return claims

    async def me(self, request: Request) -> Response:
        claims = await self._authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT id, username, email, role FROM users WHERE id = %s", (claims["user_id"],))
            row = await cur.fetchone()
        return ok({"id": row[0], "username": row[1], "email": row[2], "role": row[3]})

    async def admin_stats(self, request: Request) -> Response:
        claims = await self._authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        if claims["role"] != "admin":
            return error("Insufficient permissions", 403, field="message" if self.s.deployed else "error")
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tracks)")
            users, tracks = await cur.fetchone()
        return ok({"users": users, "tracks": tracks})

    # -- data --------------------------------------------------------------------------
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
        claims = await self._authenticate(request)
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
        if self.s.deployed:
            return ok(DEPLOYED_SEARCH)
        text = request.query_params.get("q", "")
        sql = SEARCH_SLOW if self.s.faults.on("db.slow_queries") else SEARCH_FAST
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql, (text,))
            return ok([self._track(r) for r in await cur.fetchall()])

    async def create_playlist(self, request: Request) -> Response:
        claims = await self._authenticate(request)
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
        claims = await self._authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM playlists WHERE id = %s AND owner_id = %s",
                                     (request.path_params["id"], claims["user_id"]))
            deleted = cur.rowcount
        return Response(status_code=204) if deleted else error("playlist not found", 404)
