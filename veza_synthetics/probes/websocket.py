"""WebSocket probe: handshake, idle hold with pings, close codes (two-client delivery: delivery.py)."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.http11 import USER_AGENT

from ..settings import Chat
from . import Result, describe, identity
from .transport import Transport

ABNORMAL = {1006, 1011}


@dataclass(frozen=True)
class Frames:
    """What the chat answers, from the profile: the contract's confirmations and Pong, and the frame a member
    receives a message as (the backend's own /ws/chat sends no confirmation, answers no Ping and re-broadcasts
    the sender's SendMessage as it came, C6)."""
    confirmations: bool = True
    app_ping: bool = True
    delivered_type: str = "NewMessage"

    @classmethod
    def of(cls, chat: Chat) -> Frames:
        return cls(chat.confirmations, chat.app_ping, chat.delivered_type)

    def confirmed(self, what: str) -> str:
        """What a probe waits for when the chat should confirm `what`, the setting named."""
        return f"{what} (ActionConfirmed; chat.confirmations = false for a chat that confirms nothing)"


def open_chat(transport: Transport, url: str, token: str | None, timeout_s: float,
              ids: dict[str, str] | None = None) -> connect:
    """The upgrade request carries the suite's identity (identity.py); its ids go into `ids` when given."""
    full = f"{url}{'&' if '?' in url else '?'}token={token}" if token else url
    marks, sent = transport.marks("GET chat (WebSocket)")
    agent = marks.pop("User-Agent", USER_AGENT)  # tracing.user_agent = "": the library's own
    if ids is not None:
        ids.update(sent.as_dict())
    return connect(full, open_timeout=timeout_s, close_timeout=timeout_s, ping_interval=None, max_queue=None,
                   ssl=transport.tls(url) if url.startswith("wss:") else None, additional_headers=marks, user_agent_header=agent)


class ChatRefused(Exception):
    """The chat answered an Error frame where the probe waited for a confirmation."""


async def recv_type(ws: ClientConnection, kind: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if isinstance(frame, dict) and frame.get("type") == kind:
            return frame
        if isinstance(frame, dict) and frame.get("type") == "Error" and kind == "ActionConfirmed":
            raise ChatRefused(str(frame.get("message") or frame.get("error") or frame))


async def _idle(ws: ClientConnection, hold_s: float, heartbeat_s: float, app_ping: bool) -> None:
    """Wait hold_s for a close, sending the client's heartbeat every heartbeat_s (0: never): an application
    Ping, or a ping frame where the chat answers no application Ping."""
    deadline = time.monotonic() + hold_s
    while (left := deadline - time.monotonic()) > 0:
        step = min(left, heartbeat_s) if heartbeat_s > 0 else left
        try:
            await asyncio.wait_for(ws.wait_closed(), step)
            return
        except TimeoutError:
            if deadline - time.monotonic() > 0:
                await (ws.send(json.dumps({"type": "Ping"})) if app_ping else ws.ping())
    raise TimeoutError


async def _hold(transport: Transport, url: str, token: str | None, hold_s: float, timeout_s: float, heartbeat_s: float,
                frames: Frames) -> Result:
    m: dict[str, Any] = {"hold_s": hold_s}
    events: list[str] = []
    ids: dict[str, str] = {}  # the connection's, named by a verdict on its disconnect
    started = time.perf_counter()
    try:
        ws = await open_chat(transport, url, token, timeout_s, ids)
    except InvalidStatus as exc:
        return Result("websocket", url, evidence={"connection": ids},
                      error=f"handshake refused: HTTP {exc.response.status_code}")
    except (OSError, WebSocketException, TimeoutError) as exc:
        return Result("websocket", url, evidence={"connection": ids}, error=f"handshake failed: {describe(exc, timeout_s)}")
    m["handshake_ms"] = round((time.perf_counter() - started) * 1000, 1)
    waiting_for = frames.confirmed("the connected frame")
    try:
        if frames.confirmations:
            await recv_type(ws, "ActionConfirmed", timeout_s)
        if frames.app_ping:
            waiting_for = "a Pong to the Ping message (chat.app_ping = false for a chat that answers none)"
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "Ping"}))
            await recv_type(ws, "Pong", timeout_s)
            m["app_pong_ms"] = round((time.perf_counter() - sent) * 1000, 2)
        idle_from, idle_ns = time.monotonic(), time.time_ns()
        try:  # idle as Veza's clients are: the server's pings answered (the library does), no pings of its own
            await _idle(ws, hold_s, heartbeat_s, frames.app_ping)
            m["closed_after_s"] = round(time.monotonic() - idle_from, 2)
            events.append(f"closed by the server or a proxy after {m['closed_after_s']:g} s idle: "
                          f"code {ws.close_code} {ws.close_reason or ''}".rstrip())
        except TimeoutError:
            m["held_s"] = round(time.monotonic() - idle_from, 2)
            await ws.close()
            events.append("orderly close sent")
        identity.span("hold", idle_ns, "" if "held_s" in m else events[-1], {"veza.hold_s": hold_s})
    except ChatRefused as exc:
        await ws.close()
        return Result("websocket", url, m, {"events": events, "connection": ids},
                      error=f"the chat answered Error while the probe waited for {waiting_for}: {exc}")
    except ConnectionClosed as exc:
        events.append(f"closed by peer while waiting for {waiting_for}: {exc}")
    except TimeoutError:
        events.append(f"no answer within {timeout_s:g} s: waited for {waiting_for}")
        m["unanswered"] = True
        await ws.close()
    m["close_code"] = ws.close_code
    m["open_s"] = round(time.perf_counter() - started, 2)
    return Result("websocket", url, m, {"events": events, "connection": ids})


def hold(transport: Transport, url: str, token: str | None, hold_s: float, timeout_s: float, heartbeat_s: float = 0.0,
         frames: Frames = Frames()) -> Result:
    """Open, check the application Ping/Pong (where the chat answers one), then stay idle for hold_s the way
    a browser does (no pings of its own); any close by the server or a proxy is recorded with its code and
    time. Bounded."""
    return asyncio.run(asyncio.wait_for(_hold(transport, url, token, hold_s, timeout_s, heartbeat_s, frames),
                                        hold_s + 4 * timeout_s + 5))
