"""The platform's shapes, discovered read-only: where health answers and where its status sits, whether /ready
exists, whether search reads anything, the admin-only path, the token's lifetime, where sessions live and how
their expiry is typed, the chat's health, the stream's signing, health, Content-Type, compression and bitrate
(the chat's frames: chat.py). Each compared with the profile's setting; the ones that differ go into the TOML
fragment doctor prints."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import psycopg
import redis as redis_lib

from ..canary import CONTRACT_KBPS, Canary, signed_canary
from ..probes import auth, http, postgres
from ..probes.redis import SESSION_KEY
from ..shape import Mismatch, at_path, list_at
from ..target import Target
from .findings import Findings

HEALTH_PATHS = ("/health", "/api/health")  # the contract's and the production server's; the public dev server's (B1)
STATUS_PATHS = ("status", "data.status")   # the contract's; the public chat server's (C4)
HEALTHY = {"healthy", "ok", "up", "pass"}
FORBIDDEN_PATHS = ("/api/v1/admin/stats", "/api/v1/admin/dashboard")  # the contract's; the public code's (B7)


def discover(target: Target, found: Findings) -> None:
    p = target.profile
    if p.backend.url:
        _health(target, found)
        _ready(target, found)
        if p.accounts.user_email and target.token():
            _search(target, found)
            _forbidden(target, found)
            _session(target, found)
    if p.chat.health_url:
        _chat_health(target, found)
    if p.stream.url:
        _stream_server(target, found)
        if target.token() is not None or not target.profile.stream.signed:
            _stream(target, found)


def _get(target: Target, url: str, token: str | None = None) -> tuple[int | None, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    answer = http.fetch(target.transport, url, target.profile.timeouts.request_s, headers=headers)
    return answer.measurements.get("status"), answer.evidence.get("body")


def _status_path(body: Any) -> str | None:
    return next((path for path in STATUS_PATHS if isinstance(at_path(body, path, ""), str)
                 and str(at_path(body, path, "")).lower() in HEALTHY), None)


def _health(target: Target, found: Findings) -> None:
    b = target.profile.backend
    for path in dict.fromkeys((b.health_path, *HEALTH_PATHS)):
        status, body = _get(target, f"{b.url}{path}")
        where = _status_path(body)
        if status in (200, 503) and where is not None:
            found.compare("backend.health_path", b.health_path, path, f"GET {path} answered {status}, "
                     f"{where} = {at_path(body, where, '')!r}")
            found.compare("backend.health_status_path", b.health_status_path, where, f"the status sits at {where}")
            return
    found.add("backend.health_path", f"none of {', '.join(dict.fromkeys((b.health_path, *HEALTH_PATHS)))} answers a "
              "health status", "backend.health_path: name the route where the backend says it is healthy")


def _ready(target: Target, found: Findings) -> None:
    b = target.profile.backend
    status, body = _get(target, f"{b.url}{b.ready_path or '/ready'}")
    # a route that answers: 200, or a 503 that says why in JSON; a 404, or a front door's page for a path it routes
    # nowhere (D3's 503), is none
    exists = status == 200 or (status == 503 and isinstance(body, dict))
    found.compare("backend.ready_path", b.ready_path, b.ready_path or "/ready" if exists else "",
                  f"GET {b.ready_path or '/ready'} answered {status}" + ("" if exists or status == 404 else
                                                                         " without a readiness answer"))


def _search(target: Target, found: Findings) -> None:
    b = target.profile.backend
    if not b.search_path:
        found.add("backend.search_path", "not set: search not timed")
        return
    query = b.search_query.format(n=1)
    status, body = _get(target, f"{b.url}{b.search_path}?{httpx.QueryParams({'q': query})}", target.token())
    results = list_at(body, b.search_results_path, "backend.search_results_path")
    stub = status == 404 or isinstance(results, Mismatch)
    found.compare("backend.search_path", b.search_path, "" if stub else b.search_path,
             f"GET {b.search_path}?q={query} answered {status}" +
             (f": {results}" if isinstance(results, Mismatch) else f", {len(results)} result(s)"))


def _forbidden(target: Target, found: Findings) -> None:
    a, b = target.profile.auth, target.profile.backend
    for path in dict.fromkeys((a.forbidden_path, *FORBIDDEN_PATHS)):
        status, _ = _get(target, f"{b.url}{path}", target.token())
        if status == 403:
            found.compare("auth.forbidden_path", a.forbidden_path, path, f"GET {path} as the user answered 403")
            return
    found.add("auth.forbidden_path", f"none of {', '.join(dict.fromkeys((a.forbidden_path, *FORBIDDEN_PATHS)))} "
              "answers 403 to a user", "auth.forbidden_path: name an admin-only route")


def _session(target: Target, found: Findings) -> None:
    p, token = target.profile, target.token() or ""
    claims = auth.claims(token)
    lifetime = int(claims.get("exp", 0)) - int(claims.get("iat", 0))
    if lifetime > 0 and p.auth.expires_in_s == 0:
        found.setting("auth", "expires_in_s", lifetime)
        found.add("auth.expires_in_s", f"the access token lasts {lifetime} s (exp - iat): the lifetime to hold it to")
    sid = str(claims.get("sid", ""))
    in_redis = in_table = None
    expiry_type = ""  # refresh_tokens.expires_at's type: a timestamp, or epoch seconds in a BIGINT (B9)
    if p.has_redis and sid:
        try:
            with redis_lib.Redis.from_url(p.redis.url, password=p.redis.password or None,
                                          socket_timeout=p.timeouts.request_s) as client:
                in_redis = bool(client.exists(SESSION_KEY.format(sid=sid)))
        except (redis_lib.RedisError, OSError):
            in_redis = None
    if p.has_postgres:
        try:
            with postgres.connect(target.transport, p.postgres, p.timeouts.request_s) as conn:
                in_table = bool(postgres.rows(conn, "SELECT count(*) AS n FROM refresh_tokens")[0]["n"]) if postgres.rows(
                    conn, "SELECT to_regclass('public.refresh_tokens') IS NOT NULL AS t")[0]["t"] else False
                typed = postgres.rows(conn, "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                                            "'public' AND table_name = 'refresh_tokens' AND column_name = 'expires_at'")
                expiry_type = str(typed[0]["data_type"]) if typed else ""
        except (psycopg.Error, OSError):
            in_table = None
    store = "redis" if in_redis else "postgres" if in_table else None
    if store is None:
        found.add("auth.session_store", "the session was found neither in Redis nor in refresh_tokens (no direct access?)")
        return
    found.compare("auth.session_store", p.auth.session_store, store,
                  f"the session lives in {'Redis' if store == 'redis' else 'the refresh_tokens table'}")
    if store == "postgres":  # nothing to set (auth.session_lost reads either type), but a team should know its rows
        if not expiry_type:
            found.add("refresh_tokens.expires_at", "no such column: auth.session_lost cannot read a session's expiry",
                      "auth.session_store: this refresh_tokens table has no expires_at")
            return
        read_as = "epoch seconds" if expiry_type in ("bigint", "integer", "numeric", "double precision") else "a time"
        found.add("refresh_tokens.expires_at", f"a {expiry_type} column: auth.session_lost reads it as {read_as}")


def _chat_health(target: Target, found: Findings) -> None:
    c = target.profile.chat
    status, body = _get(target, c.health_url)
    where = _status_path(body)
    if where is None:
        found.add("chat.health_status_path", f"GET {c.health_url} answered {status} with no status",
                  "chat.health_status_path: where the chat's health says healthy")
        return
    found.compare("chat.health_status_path", c.health_status_path, where, f"the chat's status sits at {where}")


def _stream_server(target: Target, found: Findings) -> None:
    """The stream server's health route, whether it checks a signature, and the canary's name as it serves it
    (the public simple_stream_server: /health, none, names with their extension, S8)."""
    s = target.profile.stream
    paths = tuple(dict.fromkeys(p for p in (s.health_path, "/health/detailed", "/health") if p))
    for path in paths:
        status, body = _get(target, f"{s.url}{path}")
        if status in (200, 503) and _status_path(body) is not None:
            found.compare("stream.health_path", s.health_path, path, f"GET {path} answered {status}")
            break
    else:  # a front door that routes no health to the stream server (D3): said, and left unchecked
        found.compare("stream.health_path", s.health_path, "", f"none of {', '.join(paths)} answers a health "
                      "status at stream.url: the stream's health is left unchecked (or name the route that answers)")
    for name in dict.fromkeys((s.canary, f"{s.canary}.mp3")):
        status, _ = _head(target, f"{s.url}/stream/{name}")
        if status == 200:  # played without a signature: the server checks none
            found.compare("stream.signed", s.signed, False, f"GET /stream/{name} without a signature answered 200")
            found.compare("stream.canary", s.canary, name, f"the canary is served as {name}")
            return
    found.add("stream.signed", f"/stream/{s.canary} without a signature is refused: the stream server checks one")


def _head(target: Target, url: str, encoding: str = "identity") -> tuple[int | None, dict[str, str]]:
    """A GET whose body is never read: its status and headers."""
    try:
        with httpx.Client(timeout=target.profile.timeouts.request_s, verify=target.transport.tls(url)) as client, \
                client.stream("GET", url, headers={"Accept-Encoding": encoding}) as answer:
            return answer.status_code, dict(answer.headers)
    except httpx.HTTPError:
        return None, {}


def _stream(target: Target, found: Findings) -> None:
    player = target.player()  # with the stream settings found above, where they differ
    s = replace(player.stream, **{k: v for k, v in found.settings.get("stream", {}).items() if k in ("signed", "canary")})
    canary = signed_canary(replace(player, stream=s))
    if not isinstance(canary, Canary):
        found.add("stream.canary", f"no canary URL: {canary.error}",
                  "stream.canary_track_id / stream.canary: the canary is not playable")
        return
    status, headers = _head(target, canary.url)
    if status != 200:
        found.add("stream.url", f"the canary's GET answered {status}", "stream.url: the canary does not play")
        return
    typed = bool(headers.get("content-type"))
    found.compare("stream.content_type_required", s.content_type_required, typed,
                  f"the canary is served {'with Content-Type ' + headers['content-type'] if typed else 'without Content-Type'}")
    _, gzip_asked = _head(target, canary.url, "gzip")
    encoding = gzip_asked.get("content-encoding", "")
    found.add("stream compression", f"to a client that accepts gzip the canary comes {encoding}-encoded"
              + (" without Content-Length" if "content-length" not in gzip_asked else "") + " (S5): the suite asks "
              "identity, as a player does, and decodes a compressed body" if encoding else
              "to a client that accepts gzip the canary comes as it is: no compression to undo")
    length, duration = int(headers.get("content-length") or 0), canary.duration_s or s.canary_duration_s
    if length and duration:
        kbps = length * 8 / duration / 1000
        quality = min(CONTRACT_KBPS, key=lambda q: abs(CONTRACT_KBPS[q] - kbps))
        found.compare("stream.quality", s.quality, quality,
                      f"the canary comes at {kbps:.0f} kbps ({length} bytes for {duration:g} s): {quality}'s bitrate")
