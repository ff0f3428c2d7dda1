"""The backend's accounts and sessions: login, refresh, logout, the bearer check every protected route makes.
Sessions live where each shape keeps them: in Redis (the contract) or as refresh_tokens rows (the public code,
B9, one per account, B10), two stores behind one face."""
from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import jwt
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .answers import error, metrics_of, ok, password_hash
from .state import SandboxState

ACCESS_LIFETIME_S = 3600  # the contract's; hard-coded to the same in the public code (B8), whatever JWT_ACCESS_TTL says
REFRESH_LIFETIME_S = 7 * 24 * 3600
Pool = Callable[[], AsyncConnectionPool[Any]]


class Sessions(Protocol):
    async def open(self, sid: str, user_id: int, ttl_s: int) -> None: ...
    async def alive(self, sid: str) -> bool: ...
    async def close(self, sid: str) -> None: ...


class RedisSessions:
    """The contract's: a key per session, expiring with it."""

    def __init__(self, redis: Callable[[], aioredis.Redis[bytes]]):
        self.redis = redis

    async def open(self, sid: str, user_id: int, ttl_s: int) -> None:
        await self.redis().set(f"veza:session:{sid}", json.dumps({"user_id": user_id, "created_at": int(time.time())}),
                               ex=ttl_s)

    async def alive(self, sid: str) -> bool:
        return bool(await self.redis().exists(f"veza:session:{sid}"))

    async def close(self, sid: str) -> None:
        await self.redis().delete(f"veza:session:{sid}")


class TableSessions:
    """The public code's: refresh_tokens rows with an epoch expiry (B9); a login ends the account's others (B10)."""

    def __init__(self, pool: Pool):
        self.pool = pool

    async def open(self, sid: str, user_id: int, ttl_s: int) -> None:
        async with self.pool().connection() as conn:
            await conn.execute("DELETE FROM refresh_tokens WHERE user_id = %s", (user_id,))
            await conn.execute("INSERT INTO refresh_tokens (user_id, session_id, expires_at) VALUES "
                               "(%s, %s, extract(epoch FROM now() + make_interval(secs => %s))::bigint)",
                               (user_id, sid, ttl_s))

    async def alive(self, sid: str) -> bool:
        async with self.pool().connection() as conn:
            cur = await conn.execute("SELECT 1 FROM refresh_tokens WHERE session_id = %s "
                                     "AND expires_at > extract(epoch FROM now())", (sid,))
            return await cur.fetchone() is not None

    async def close(self, sid: str) -> None:
        async with self.pool().connection() as conn:
            await conn.execute("DELETE FROM refresh_tokens WHERE session_id = %s", (sid,))


class Auth:
    def __init__(self, state: SandboxState, pool: Pool, sessions: Sessions, now: Callable[[], float],
                 token_type: bool):
        self.s, self.pool, self.sessions, self.now = state, pool, sessions, now
        self.token_type = token_type  # "token_type": "Bearer" in the login's answer (none in the public code, B5)

    def _tokens(self, user: dict[str, Any], sid: str) -> dict[str, Any]:
        now = int(self.now())
        lifetime = 2 if self.s.faults.on("auth.short_ttl") else ACCESS_LIFETIME_S
        claims = {"user_id": user["id"], "username": user["username"], "role": user["role"], "sid": sid,
                  "iat": now, "exp": now + lifetime}
        access = jwt.encode(claims, self.s.jwt_secret, algorithm="HS256")
        refresh = jwt.encode({"user_id": user["id"], "sid": sid, "typ": "refresh", "iat": now,
                              "exp": now + REFRESH_LIFETIME_S}, self.s.jwt_secret, algorithm="HS256")
        tokens = {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",  # nosec B105
                  "expires_in": ACCESS_LIFETIME_S}
        if not self.token_type:
            del tokens["token_type"]
        return tokens

    def _session_ttl(self) -> int:
        return 1 if self.s.faults.on("auth.session_eviction") else REFRESH_LIFETIME_S

    async def _user(self, user_id: int) -> dict[str, Any]:
        async with self.pool().connection() as conn:
            cur = await conn.execute("SELECT id, username, email, role FROM users WHERE id = %s", (user_id,))
            row = await cur.fetchone()
        return {"id": row[0], "username": row[1], "email": row[2], "role": row[3]}

    def decode(self, token: str, key: str | None = None) -> dict[str, Any]:
        return jwt.decode(token, key or self.s.jwt_secret, algorithms=["HS256"],
                          options={"verify_iat": False, "verify_exp": False})

    async def open_sessions(self, user_agent: str | None = None) -> int:
        """Sessions not logged out nor expired, of every client or of the one that sent this User-Agent."""
        sids = [sid for sid, agent in list(self.s.session_agents.items()) if user_agent is None or agent == user_agent]
        return sum([await self.sessions.alive(sid) for sid in sids])

    async def login(self, request: Request) -> Response:
        try:
            body = await request.json()
            email, password = str(body["email"]), str(body["password"])
        except Exception:
            return error("email and password are required", 400)
        self.s.logins[email] = self.s.logins.get(email, 0) + 1  # what a lockout counts: every attempt
        async with self.pool().connection() as conn:
            cur = await conn.execute("SELECT id, username, email, role, password_hash, salt FROM users WHERE email = %s",
                                     (email,))
            row = await cur.fetchone()
        if row is None or not hmac.compare_digest(row[4], password_hash(password, row[5])):
            metrics_of(request).auth_failures.labels("invalid_credentials").inc()
            return error("invalid email or password", 401)
        user = {"id": row[0], "username": row[1], "email": row[2], "role": row[3]}
        sid = uuid.uuid4().hex
        self.s.session_agents[sid] = request.headers.get("user-agent", "")
        await self.sessions.open(sid, user["id"], self._session_ttl())
        return ok({**self._tokens(user, sid), "user": user})

    async def refresh(self, request: Request) -> Response:
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
            claims = self.decode(token)
            if claims.get("typ") != "refresh" or claims["exp"] < self.now():
                raise jwt.InvalidTokenError("not a live refresh token")
        except jwt.InvalidTokenError:
            metrics_of(request).auth_failures.labels("invalid_refresh").inc()
            return error("Invalid refresh token", 401)
        if self.s.faults.on("auth.refresh_broken"):
            metrics_of(request).auth_failures.labels("invalid_refresh").inc()
            return error("Invalid refresh token", 401)
        if not await self.sessions.alive(claims["sid"]):
            return error("session expired", 401)
        tokens = self._tokens(await self._user(claims["user_id"]), claims["sid"])
        return ok({"access_token": tokens["access_token"], "expires_in": tokens["expires_in"]})

    async def logout(self, request: Request) -> Response:
        try:
            claims = self.decode((await request.json())["refresh_token"])
        except Exception:
            return error("Invalid refresh token", 401)
        await self.sessions.close(claims["sid"])
        return ok(None, message="logged out")

    async def authenticate(self, request: Request) -> dict[str, Any] | JSONResponse:
        """The bearer's claims, or the refusal to answer with."""
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return error("Authorization header required", 401)
        key = self.s.jwt_secret + ":rotated" if self.s.faults.on("auth.reject_tokens") else None
        try:
            claims = self.decode(auth[7:], key)
        except jwt.InvalidTokenError as exc:
            metrics_of(request).auth_failures.labels("invalid_token").inc()
            return error(f"Invalid token: {exc}", 401)
        if claims.get("typ") == "refresh":
            return error("Invalid token: refresh token used as access token", 401)
        if claims["exp"] < self.now():
            metrics_of(request).auth_failures.labels("expired").inc()
            return error("token expired", 401)
        if not await self.sessions.alive(claims["sid"]):
            metrics_of(request).auth_failures.labels("session_expired").inc()
            return error("session expired", 401)
        if self.s.faults.on("auth.forbidden") and claims["role"] != "admin":
            return error("Insufficient permissions", 403)
        return claims

    async def me(self, request: Request) -> Response:
        claims = await self.authenticate(request)
        if isinstance(claims, JSONResponse):
            return claims
        return ok(await self._user(claims["user_id"]))
