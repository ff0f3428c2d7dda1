"""The sandbox's chat server: WebSocket JSON frames per veza-contract.md, /health and /metrics."""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import jwt
import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from .processes import LOOPBACK, free_port
from .serving import open_pool, renew_pool
from .variants import CHATS

if TYPE_CHECKING:
    from .state import SandboxState


class Chat:
    def __init__(self, state: SandboxState):
        self.s, self.shape = state, CHATS[state.variant]
        self.port = 0
        self.conversations: dict[str, set[ServerConnection]] = {}
        self.connections: set[ServerConnection] = set()
        self._server: Server | None = None
        self.pool: AsyncConnectionPool[Any] | None = None
        reg = self.registry = CollectorRegistry()
        self.connections_gauge = Gauge("veza_chat_connections", "Open WebSocket connections", registry=reg)
        self.messages = Counter("veza_chat_messages_total", "Messages broadcast", registry=reg)

    async def start(self) -> None:
        self.pool = await open_pool(self.s.app_dsn, 2, 4, autocommit=True)
        self._server = await serve(self.handler, LOOPBACK, self.port or free_port(), process_request=self.process_request,
                                   ping_interval=30 if self.shape.pings else None,
                                   ping_timeout=20, close_timeout=2)
        self.port = self._server.sockets[0].getsockname()[1]

    async def reconnect_database(self) -> None:
        self.pool = await renew_pool(self.pool, self.s.app_dsn, 2, 4, autocommit=True)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 3)
        if self.pool:
            await self.pool.close(timeout=2)

    async def _store(self, frame: dict[str, Any], author: str) -> None:
        """Messages persist in PostgreSQL, as Veza's do (the write recorder counts them)."""
        if self.pool is None:
            raise RuntimeError("the chat server is not started")
        async with self.pool.connection() as conn:
            await conn.execute("INSERT INTO messages (conversation_id, author, content, client_msg_id) "
                               "VALUES (%s, %s, %s, %s)", (str(frame["conversation_id"]), author,
                                                           str(frame.get("content", "")), frame.get("client_msg_id")))

    async def stored_messages(self) -> dict[str, int] | None:
        """Messages stored per conversation; None while the database cannot say."""
        if self.pool is None:
            return None
        try:
            async with self.pool.connection() as conn:
                cur = await conn.execute("SELECT conversation_id, count(*) FROM messages GROUP BY 1")
                return {row[0]: row[1] for row in await cur.fetchall()}
        except (psycopg.Error, PoolTimeout):
            return None

    def _token(self, request: Request) -> str | None:
        query = parse_qs(urlsplit(request.path).query)
        if "token" in query:
            return query["token"][0]
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/health":
            body = {"status": "healthy", "service": "veza-chat-server", "connections": len(self.connections)}
            if self.shape.nested_health:
                body = {"success": True, "data": {"status": "healthy", "service": "veza-chat-server"}, "message": None}
            return connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
        if path == "/metrics" and self.shape.prometheus_metrics:
            if self.s.faults.on("infra.target_down"):
                await asyncio.sleep(5)  # the scrape times out: the target stops answering
            self.connections_gauge.set(len(self.connections))
            response = connection.respond(HTTPStatus.OK, generate_latest(self.registry).decode())
            response.headers["Content-Type"] = "text/plain; version=0.0.4"
            return response
        if path != self.shape.path:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if self.shape.takes_anyone:
            connection.username = "anonymous"
            return None
        token = self._token(request)
        if not token:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Authorization required\n")
        try:
            claims = jwt.decode(token, self.s.jwt_secret, algorithms=["HS256"], options={"verify_iat": False})
        except jwt.InvalidTokenError:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid token\n")
        connection.username = claims.get("username", "?")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections.add(ws)
        faults = self.s.faults
        try:
            await ws.send(json.dumps({"type": "ActionConfirmed", "action": "connected", "success": True}))
            if faults.on("ws.drop_connections"):
                asyncio.get_running_loop().call_later(faults.param("ws.drop_connections"), ws.transport.abort)
            if faults.on("ws.no_heartbeat"):
                self._mute_pings(ws)
            async for raw in ws:
                await self._on_frame(ws, raw)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(ws)
            for members in self.conversations.values():
                members.discard(ws)

    @staticmethod
    def _mute_pings(ws: ServerConnection) -> None:
        """ws.no_heartbeat: ping frames go unanswered; every other frame is still served."""
        receive = ws.protocol.recv_frame

        def recv_frame(frame: Frame) -> None:
            if frame.opcode is not Opcode.PING:
                receive(frame)
        ws.protocol.recv_frame = recv_frame  # type: ignore[method-assign]  # a fault: the protocol's own hook

    async def _on_frame(self, ws: ServerConnection, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
            kind = frame["type"]
        except (ValueError, KeyError, TypeError):
            await ws.send(json.dumps({"type": "Error", "message": "invalid frame: expected JSON with a type"}))
            return
        if self.shape.uuid_conversations and kind in ("JoinConversation", "SendMessage") \
                and not _is_uuid(frame.get("conversation_id")):
            await ws.send(json.dumps({"type": "Error", "message": "Invalid conversation_id"}))  # C2
            return
        if kind == "Ping":
            if self.s.faults.on("ws.no_heartbeat"):
                return
            await ws.send(json.dumps({"type": "Pong"}))
        elif kind == "JoinConversation" and frame.get("conversation_id"):
            self.conversations.setdefault(str(frame["conversation_id"]), set()).add(ws)
            await ws.send(json.dumps({"type": "ActionConfirmed", "action": "joined_conversation", "success": True}))
        elif kind == "SendMessage" and frame.get("conversation_id") in self.conversations:
            try:
                await self._store(frame, getattr(ws, "username", "?"))
            except (psycopg.Error, PoolTimeout):
                await ws.send(json.dumps({"type": "Error", "message": "message not stored: database unavailable"}))
                return
            message_id = uuid.uuid4().hex
            confirmed = {"type": "ActionConfirmed", "action": "message_sent", "success": True}
            await ws.send(json.dumps(confirmed if self.shape.uuid_conversations else {**confirmed, "message_id": message_id}))
            broadcast = {"type": "NewMessage", "conversation_id": frame["conversation_id"], "message_id": message_id,
                         "author": getattr(ws, "username", "?"), "content": frame.get("content", ""),
                         "client_msg_id": frame.get("client_msg_id"), "sent_at": time.time()}
            if self.s.faults.one_in("ws.drop_messages", 10) or not self.shape.broadcasts:
                return  # stored, and no other member told
            members = list(self.conversations[frame["conversation_id"]])
            if self.s.faults.on("ws.latency"):
                asyncio.get_running_loop().call_later(self.s.faults.param("ws.latency"),
                                                      lambda: asyncio.ensure_future(self._broadcast(members, broadcast)))
            else:
                await self._broadcast(members, broadcast)
        else:
            await ws.send(json.dumps({"type": "Error", "message": f"unsupported or incomplete frame: {kind}"}))

    async def _broadcast(self, members: Iterable[ServerConnection], broadcast: dict[str, Any]) -> None:
        self.messages.inc()
        text = json.dumps(broadcast)
        for member in members:
            with contextlib.suppress(ConnectionClosed):
                await member.send(text)


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
