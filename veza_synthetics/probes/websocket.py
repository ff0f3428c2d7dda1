"""WebSocket probe: handshake, idle hold with pings, close codes; two-client delivery with latency."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.http11 import USER_AGENT

from ..settings import Chat
from . import Result, describe, identity, spread, tls

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


def _connect(url: str, token: str | None, timeout_s: float, ids: dict[str, str] | None = None) -> connect:
    """The upgrade request carries the suite's identity (identity.py); its ids go into `ids` when given."""
    full = f"{url}{'&' if '?' in url else '?'}token={token}" if token else url
    marks, sent = identity.new_request()
    agent = marks.pop("User-Agent", USER_AGENT)  # tracing.user_agent = "": the library's own
    if ids is not None:
        ids.update(sent.as_dict())
    return connect(full, open_timeout=timeout_s, close_timeout=timeout_s, ping_interval=None, max_queue=None,
                   ssl=tls(url) if url.startswith("wss:") else None, additional_headers=marks, user_agent_header=agent)


def _close_code(ws: ClientConnection) -> int | None:
    return ws.close_code


class ChatRefused(Exception):
    """The chat answered an Error frame where the probe waited for a confirmation."""


async def _recv_type(ws: ClientConnection, kind: str, timeout_s: float) -> dict[str, Any]:
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


async def _hold(url: str, token: str | None, hold_s: float, timeout_s: float, heartbeat_s: float,
                frames: Frames) -> Result:
    m: dict[str, Any] = {"hold_s": hold_s}
    events: list[str] = []
    ids: dict[str, str] = {}  # the connection's, named by a verdict on its disconnect
    started = time.perf_counter()
    try:
        ws = await _connect(url, token, timeout_s, ids)
    except InvalidStatus as exc:
        return Result("websocket", url, evidence={"connection": ids},
                      error=f"handshake refused: HTTP {exc.response.status_code}")
    except (OSError, WebSocketException, TimeoutError) as exc:
        return Result("websocket", url, evidence={"connection": ids}, error=f"handshake failed: {describe(exc, timeout_s)}")
    m["handshake_ms"] = round((time.perf_counter() - started) * 1000, 1)
    waiting_for = frames.confirmed("the connected frame")
    try:
        if frames.confirmations:
            await _recv_type(ws, "ActionConfirmed", timeout_s)
        if frames.app_ping:
            waiting_for = "a Pong to the Ping message (chat.app_ping = false for a chat that answers none)"
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "Ping"}))
            await _recv_type(ws, "Pong", timeout_s)
            m["app_pong_ms"] = round((time.perf_counter() - sent) * 1000, 2)
        idle_from = time.monotonic()
        try:  # idle as Veza's clients are: the server's pings answered (the library does), no pings of its own
            await _idle(ws, hold_s, heartbeat_s, frames.app_ping)
            m["closed_after_s"] = round(time.monotonic() - idle_from, 2)
            events.append(f"closed by the server or a proxy after {m['closed_after_s']:g} s idle: "
                          f"code {ws.close_code} {ws.close_reason or ''}".rstrip())
        except TimeoutError:
            m["held_s"] = round(time.monotonic() - idle_from, 2)
            await ws.close()
            events.append("orderly close sent")
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
    m["close_code"] = _close_code(ws)
    m["open_s"] = round(time.perf_counter() - started, 2)
    return Result("websocket", url, m, {"events": events, "connection": ids})


def hold(url: str, token: str | None, hold_s: float, timeout_s: float, heartbeat_s: float = 0.0,
         frames: Frames = Frames()) -> Result:
    """Open, check the application Ping/Pong (where the chat answers one), then stay idle for hold_s the way
    a browser does (no pings of its own); any close by the server or a proxy is recorded with its code and
    time. Bounded."""
    return asyncio.run(asyncio.wait_for(_hold(url, token, hold_s, timeout_s, heartbeat_s, frames),
                                        hold_s + 4 * timeout_s + 5))


def count_delivery(sent: list[int], received: list[int]) -> dict[str, Any]:
    """Lost, duplicated and reordered numbers of what B received out of what A sent."""
    seen, duplicated, reordered, highest = set(), [], [], -1
    for n in received:
        if n in seen:
            duplicated.append(n)
            continue
        seen.add(n)
        if n < highest:
            reordered.append(n)
        highest = max(highest, n)
    lost = [n for n in sent if n not in seen]
    return {"lost": lost, "duplicated": duplicated, "reordered": reordered}


async def _pair(url: str, token: str | None, timeout_s: float) -> tuple[ClientConnection, ClientConnection] | Result:
    """Two connected clients (A sends, B receives), or why not."""
    try:
        a = await _connect(url, token, timeout_s)
    except (OSError, WebSocketException, TimeoutError) as exc:
        return Result("websocket", url, error=f"handshake failed: {describe(exc, timeout_s)}")
    try:
        return a, await _connect(url, token, timeout_s)
    except (OSError, WebSocketException, TimeoutError) as exc:
        await a.close()
        return Result("websocket", url, error=f"second client's handshake failed: {describe(exc, timeout_s)}")


async def _app_pongs(ws: ClientConnection, timeout_s: float, events: list[str]) -> list[float]:
    """Five application Ping/Pong round trips (ms): reported beside delivery, judged by ws.disconnects."""
    pongs: list[float] = []
    for _ in range(5):
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "Ping"}))
        try:
            await _recv_type(ws, "Pong", timeout_s)
        except TimeoutError:
            events.append(f"no Pong within {timeout_s:g} s")
            break
        pongs.append((time.perf_counter() - t0) * 1000)
    return pongs


async def _receive(b: ClientConnection, run: str, messages: int, arrivals: list[tuple[int, float]],
                   delivered_type: str) -> None:
    """B's side: when each of this run's numbered messages arrived (as the profile's delivered frame type)."""
    async for raw in b:
        frame = json.loads(raw)
        cid = str(frame.get("client_msg_id") or "")
        if frame.get("type") == delivered_type and cid.startswith(run):
            arrivals.append((int(cid.split("-")[1]), time.perf_counter()))
            if len(arrivals) >= messages:
                return


async def _join(ws: ClientConnection, conversation: str, timeout_s: float, frames: Frames) -> None:
    """Connected, then in the conversation (each confirmed, where the chat confirms)."""
    if frames.confirmations:
        await _recv_type(ws, "ActionConfirmed", timeout_s)
    await ws.send(json.dumps({"type": "JoinConversation", "conversation_id": conversation}))
    if frames.confirmations:
        await _recv_type(ws, "ActionConfirmed", timeout_s)


async def _delivery(url: str, token: str | None, messages: int, timeout_s: float, conversation: str,
                    gap_s: float, frames: Frames) -> Result:
    run = uuid.uuid4().hex[:8]
    pair = await _pair(url, token, timeout_s)
    if isinstance(pair, Result):
        return pair
    a, b = pair
    sent_at: dict[int, float] = {}
    arrivals: list[tuple[int, float]] = []
    events: list[str] = []
    pongs: list[float] = []
    try:
        for ws in (a, b):
            await _join(ws, conversation, timeout_s, frames)
        receiver = asyncio.create_task(_receive(b, run, messages, arrivals, frames.delivered_type))
        for i in range(messages):
            sent_at[i] = time.perf_counter()
            await a.send(json.dumps({"type": "SendMessage", "conversation_id": conversation,
                                     "content": f"synthetic #{i}", "client_msg_id": f"{run}-{i}"}))
            await asyncio.sleep(gap_s)
        try:
            await asyncio.wait_for(receiver, timeout_s)
        except TimeoutError:
            events.append(f"B still missing messages {timeout_s:g} s after the last send")
        pongs = await _app_pongs(a, timeout_s, events) if frames.app_ping else []
    except ChatRefused as exc:
        return Result("websocket", url, error=f"the chat refused conversation {conversation!r}: {exc}")
    except ConnectionClosed as exc:
        events.append(f"connection closed: {exc}")
    except TimeoutError:
        waited = f": waited for {frames.confirmed('a confirmation')}" if frames.confirmations else ""
        events.append(f"no answer within {timeout_s:g} s{waited}")
    finally:
        for ws in (a, b):
            await ws.close()
    if not sent_at:  # the conversation never began: nothing was sent, so nothing can be said lost
        return Result("websocket", url, evidence={"events": events}, error="no message sent: " + "; ".join(events))
    return _delivered(url, messages, sent_at, arrivals, pongs, events)


def _delivered(url: str, messages: int, sent_at: dict[int, float], arrivals: list[tuple[int, float]],
               pongs: list[float], events: list[str]) -> Result:
    latencies = [(t - sent_at[n]) * 1000 for n, t in arrivals if n in sent_at]
    counts = count_delivery(list(range(messages)), [n for n, _ in arrivals])
    lat = spread(latencies)
    measurements = {"sent": messages, "received": len(arrivals), "lost": len(counts["lost"]),
                    "duplicated": len(counts["duplicated"]), "reordered": len(counts["reordered"]),
                    "delivery_p50_ms": lat["p50_ms"], "delivery_p95_ms": lat["p95_ms"], "delivery_max_ms": lat["max_ms"],
                    "app_pong_p50_ms": spread(pongs)["p50_ms"]}
    evidence = {"missing_numbers": counts["lost"][:50], "duplicated_numbers": counts["duplicated"][:50],
                "reordered_numbers": counts["reordered"][:50], "events": events,
                "latencies_ms": [round(x, 2) for x in latencies], "delivery_ms": lat}
    return Result("websocket", url, measurements, evidence)


def delivery(url: str, token: str | None, messages: int, timeout_s: float, conversation: str,
             frames: Frames = Frames(), gap_s: float = 0.05) -> Result:
    """Two clients in `conversation`; A sends numbered messages, 20 a second (a busy conversation, not a burst that
    queues behind itself); what B gets, and how fast."""
    budget = messages * (gap_s + 0.01) + 4 * timeout_s + 10
    return asyncio.run(asyncio.wait_for(_delivery(url, token, messages, timeout_s, conversation, gap_s, frames),
                                        budget))
