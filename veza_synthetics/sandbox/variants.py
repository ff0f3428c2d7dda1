"""The sandbox's servers as each variant has them, declared: the backend's routes, answers, sessions and the
middleware before it; the chat server's and the stream server's. The contract's (veza-contract.md), the public
code's with its dev server, and with its production server (real-veza.md's B, C and S items). The servers read
their variant's shape; none asks which variant it is."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

Health = Callable[[str, str, int, float], tuple[dict[str, Any], bool]]  # (database, redis, now, uptime) -> body, up


def _contract_health(database: str, redis: str, now: int, uptime_s: float) -> tuple[dict[str, Any], bool]:
    """The contract's: both components, named, and 503 when either is down."""
    return {"service": "veza-backend-api", "version": "sandbox", "timestamp": now, "uptime_s": round(uptime_s, 1),
            "database": database, "redis": redis,
            "components": {"database_connected": database == "ok", "redis_available": redis == "ok"}}, \
        database == "ok" and redis == "ok"


def _dev_server_health(database: str, redis: str, now: int, uptime_s: float) -> tuple[dict[str, Any], bool]:
    """The public dev server's /api/health: the database only, no redis, no uptime (B1)."""
    up = database == "ok"
    return {"service": "veza-backend-dev", "version": "2.0.0", "frontend": "react", "timestamp": now,
            "database": database, "components": {"database_connected": up, "websocket_active": True}}, up


def _production_server_health(database: str, redis: str, now: int, uptime_s: float) -> tuple[dict[str, Any], bool]:
    """The public production server's /health: 503 only for PostgreSQL; Redis down is still healthy, named (B1)."""
    return {"service": "veza-backend-api", "timestamp": now, "uptime": f"{uptime_s:.0f}s", "database": database,
            "redis": redis}, database == "ok"


@dataclass(frozen=True)
class BackendShape:
    health_path: str             # "/health"; the dev server's "/api/health" (B1)
    health: Health               # its health answer (B1)
    ready: bool                  # a /ready route (none on the dev server, B2)
    legacy_refresh: bool         # /auth/refresh beside /api/v1/auth/refresh (the contract's, B6)
    admin_routes: tuple[str, ...]  # under /api/v1/admin/ (no /admin/stats in the public code, B7)
    refusal_field: str           # where an admin route's 403 says why: "error", or "message" (B4)
    real_data: bool              # tracks and search from the database, and the stream-url route; else stubs (B13)
    prometheus_text: bool        # /metrics in Prometheus's text format; else a JSON of runtime figures (B3)
    token_type: bool             # "token_type": "Bearer" in the login's answer (none in the public code, B5)
    sessions_in_table: bool      # refresh_tokens rows, one per account (B9, B10); else Redis keys
    own_chat: bool               # the backend's own /ws/chat (C6)
    ids_on_health: bool          # X-Request-ID echoed on health, ready and metrics too (not in the public code, B4)
    public_limit: bool           # both public servers' 100 requests a minute (B11)
    production_limits: bool      # the production server's Redis script and its limits (B12, B14)


DEPLOYED_ADMIN_ROUTES = ("dashboard", "users", "analytics", "categories")
CONTRACT = BackendShape("/health", _contract_health, ready=True, legacy_refresh=True, admin_routes=("stats",),
                        refusal_field="error", real_data=True, prometheus_text=True, token_type=True,
                        sessions_in_table=False, own_chat=False, ids_on_health=True, public_limit=False,
                        production_limits=False)
DEV_SERVER = BackendShape("/api/health", _dev_server_health, ready=False, legacy_refresh=False,
                          admin_routes=DEPLOYED_ADMIN_ROUTES, refusal_field="message", real_data=False,
                          prometheus_text=False, token_type=False, sessions_in_table=True, own_chat=True,
                          ids_on_health=False, public_limit=True, production_limits=False)
# the same public code with its production server in front: its /health, a /ready, its own limits
PRODUCTION_SERVER = replace(DEV_SERVER, health_path="/health", health=_production_server_health, ready=True,
                            production_limits=True)
SHAPES: dict[str, BackendShape] = {"contract": CONTRACT, "deployed": DEV_SERVER, "production-server": PRODUCTION_SERVER}


@dataclass(frozen=True)
class ChatShape:
    path: str                   # the WebSocket's path: "/chat"; the public chat server's "/ws"
    takes_anyone: bool          # connections without a token, as "anonymous" (the public chat server)
    pings: bool                 # the server's own pings every 30 s (the public chat never pings, C3)
    nested_health: bool         # /health's status under data, without connections (C4)
    prometheus_metrics: bool    # a /metrics in Prometheus's text format (none in the public chat server, C5)
    uuid_conversations: bool    # conversation ids must be UUIDs, and a send's confirmation has no message id (C2)
    broadcasts: bool            # a message goes to the conversation's other members (not in the public code, C1)


@dataclass(frozen=True)
class StreamShape:
    public_code: bool           # the public stream_server: the file as encoded whatever the quality (S3), gzip (S5),
                                # expired URLs refused only past a tolerance, refusals in plain text (S2)
    content_type: str | None    # the audio's Content-Type (none in the public code)
    info_route: bool            # /info/{name} (stream_server has none, S6)
    prometheus_metrics: bool    # /metrics in Prometheus's text format; else JSON (S7)


CONTRACT_CHAT = ChatShape("/chat", takes_anyone=False, pings=True, nested_health=False, prometheus_metrics=True,
                          uuid_conversations=False, broadcasts=True)
PUBLIC_CHAT = ChatShape("/ws", takes_anyone=True, pings=False, nested_health=True, prometheus_metrics=False,
                        uuid_conversations=True, broadcasts=False)
CONTRACT_STREAM = StreamShape(public_code=False, content_type="audio/mpeg", info_route=True, prometheus_metrics=True)
PUBLIC_STREAM = StreamShape(public_code=True, content_type=None, info_route=False, prometheus_metrics=False)
CHATS: dict[str, ChatShape] = {"contract": CONTRACT_CHAT, "deployed": PUBLIC_CHAT, "production-server": PUBLIC_CHAT}
STREAMS: dict[str, StreamShape] = {"contract": CONTRACT_STREAM, "deployed": PUBLIC_STREAM,
                                   "production-server": PUBLIC_STREAM}
