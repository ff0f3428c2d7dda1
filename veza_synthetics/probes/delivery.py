"""Chat delivery probe: two clients in a conversation, what B receives of what A sent, and how fast."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, WebSocketException

from . import Result, describe, identity, spread
from .transport import Transport
from .websocket import ChatRefused, Frames, open_chat, recv_type


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


async def _pair(transport: Transport, url: str, token: str | None,
                timeout_s: float) -> tuple[ClientConnection, ClientConnection] | Result:
    """Two connected clients (A sends, B receives), or why not."""
    try:
        a = await open_chat(transport, url, token, timeout_s)
    except (OSError, WebSocketException, TimeoutError) as exc:
        return Result("websocket", url, error=f"handshake failed: {describe(exc, timeout_s)}")
    try:
        return a, await open_chat(transport, url, token, timeout_s)
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
            await recv_type(ws, "Pong", timeout_s)
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


async def join(ws: ClientConnection, conversation: str, timeout_s: float, frames: Frames) -> None:
    """Connected, then in the conversation (each confirmed, where the chat confirms)."""
    if frames.confirmations:
        await recv_type(ws, "ActionConfirmed", timeout_s)
    await ws.send(json.dumps({"type": "JoinConversation", "conversation_id": conversation}))
    if frames.confirmations:
        await recv_type(ws, "ActionConfirmed", timeout_s)


async def _delivery(transport: Transport, url: str, token: str | None, messages: int, timeout_s: float, conversation: str,
                    gap_s: float, frames: Frames) -> Result:
    run = uuid.uuid4().hex[:8]
    pair = await _pair(transport, url, token, timeout_s)
    if isinstance(pair, Result):
        return pair
    a, b = pair
    sent_at: dict[int, float] = {}
    arrivals: list[tuple[int, float]] = []
    events: list[str] = []
    pongs: list[float] = []
    try:
        for ws in (a, b):
            await join(ws, conversation, timeout_s, frames)
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


def delivery(transport: Transport, url: str, token: str | None, messages: int, timeout_s: float, conversation: str,
             frames: Frames, gap_s: float = 0.05) -> Result:
    """Two clients in `conversation`; A sends numbered messages, 20 a second (a busy conversation, not a burst that
    queues behind itself); what B gets, and how fast."""
    budget = messages * (gap_s + 0.01) + 4 * timeout_s + 10
    started_ns = time.time_ns()
    result = asyncio.run(asyncio.wait_for(_delivery(transport, url, token, messages, timeout_s, conversation, gap_s,
                                                    frames), budget))
    identity.span("delivery", started_ns, result.error or "", {"veza.messages": messages})
    return result
