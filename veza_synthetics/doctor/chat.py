"""The chat's shape, discovered: whether it takes a connection without a token, confirms it (ActionConfirmed),
answers an application Ping, and tells a conversation's other members what one sends, as which frame.

A chat that confirms nothing may be the backend's own /ws/chat (C6), which sends every frame it gets, a Ping
included, to every connected client: doctor sends it nothing and says what that shape means for the settings.
Elsewhere it sends one Ping (answered to the sender alone), and one message where the profile lets the suite
send one (chat.synthetic_conversation, or writes allowed): the only way to know whether members get it."""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from ..probes.delivery import join
from ..probes.websocket import ChatRefused, Frames, open_chat, recv_type
from ..target import Target
from .findings import Findings

# The backend's own chat (C6), as the chat checks need it said: no Pong, the sender's frame sent on as it came, to
# every connected client.
BACKEND_CHAT = {"app_ping": False, "delivered_type": "SendMessage", "rooms": False, "broadcast": True}


@dataclass(frozen=True)
class Connected:
    accepted: bool
    first: str | None = None  # the first frame's type, None when none came within the timeout
    pong: bool | None = None  # whether a Ping got its Pong; None: not asked


def discover(target: Target, found: Findings) -> None:
    c = target.profile.chat
    seen = asyncio.run(_connect(target, None))
    found.compare("chat.auth", c.auth, "none" if seen.accepted else "token",
            f"a connection without a token is {'accepted' if seen.accepted else 'refused'}")
    token = None if seen.accepted else target.token()
    if not seen.accepted:
        seen = asyncio.run(_connect(target, token))
    if not seen.accepted:
        return
    confirms = seen.first == "ActionConfirmed"
    found.compare("chat.confirmations", c.confirmations, confirms,
            f"its first frame after connecting: {seen.first or f'none within {target.profile.timeouts.ws_s:g} s'}")
    if not confirms:  # no Ping, no message: a chat that sends every frame to everyone would show them to all
        for key, value in BACKEND_CHAT.items():
            found.compare(f"chat.{key}", getattr(c, key), value, "a chat that confirms nothing: taken for the backend's "
                    "own /ws/chat (C6), every frame sent on as it came to every client; doctor sent it none")
        return
    found.compare("chat.app_ping", c.app_ping, bool(seen.pong),
            f"an application Ping was {'answered Pong' if seen.pong else 'not answered'}")
    why_not = _may_not_send(target)
    if why_not:
        found.add("chat.broadcast", f"not discovered: {why_not}")
        return
    delivered = asyncio.run(_one_message(target, token))
    if isinstance(delivered, Exception):
        found.add("chat.broadcast", f"not discovered: the message could not be sent: {type(delivered).__name__}: "
                                    f"{delivered}")
        return
    found.compare("chat.broadcast", c.broadcast, delivered is not None,
            f"a message sent by one member {'reached' if delivered else 'never reached'} the other")
    if delivered is not None:
        found.compare("chat.delivered_type", c.delivered_type, delivered, f"the other member got it as {delivered}")


def _may_not_send(target: Target) -> str:
    p = target.profile
    if p.allows_writes or p.chat.synthetic_conversation:
        return ""
    return ("it takes sending a message, and the profile is read-only and names no chat.synthetic_conversation "
            "(the read-only opt-in)")


async def _connect(target: Target, token: str | None) -> Connected:
    """Connected: the first frame waited for; where it is a confirmation, one Ping asked."""
    timeout = target.profile.timeouts.ws_s
    try:
        async with open_chat(target.transport, target.profile.chat.url, token, timeout) as ws:
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            except (TimeoutError, ValueError):
                return Connected(True)
            first = frame.get("type") if isinstance(frame, dict) else None
            if first != "ActionConfirmed":
                return Connected(True, first)
            await ws.send(json.dumps({"type": "Ping"}))
            try:
                await recv_type(ws, "Pong", timeout)
            except TimeoutError:
                return Connected(True, first, pong=False)
            return Connected(True, first, pong=True)
    except (OSError, WebSocketException, TimeoutError):  # refused, closed or unreachable: not taken
        return Connected(False)


async def _one_message(target: Target, token: str | None) -> str | None | Exception:
    """Two members of the synthetic conversation (a new one where writes are allowed); one sends a message: the
    type of the frame the other gets it as, None when none comes within the timeout."""
    c, timeout = target.profile.chat, target.profile.timeouts.ws_s
    conversation, mark = c.synthetic_conversation or str(uuid.uuid4()), f"doctor-{uuid.uuid4().hex[:8]}"
    try:
        async with open_chat(target.transport, c.url, token, timeout) as a, \
                open_chat(target.transport, c.url, token, timeout) as b:
            for ws in (a, b):
                await join(ws, conversation, timeout, Frames())  # this chat confirms: each step waited for
            await a.send(json.dumps({"type": "SendMessage", "conversation_id": conversation,
                                     "content": "veza-synth doctor", "client_msg_id": mark}))
            try:
                return await asyncio.wait_for(_frame_carrying(b, mark), timeout)
            except TimeoutError:
                return None
    except (OSError, WebSocketException, TimeoutError, ValueError, ChatRefused) as exc:
        return exc


async def _frame_carrying(ws: ClientConnection, mark: str) -> str:
    async for raw in ws:
        frame = json.loads(raw)
        if isinstance(frame, dict) and frame.get("client_msg_id") == mark:
            return str(frame.get("type"))
    raise TimeoutError("closed")
