"""WebSocket chat: disconnects, lost messages, delivery latency (two real clients)."""
from __future__ import annotations

from ..probes import websocket
from ..target import Target
from ..verdict import Verdict
from . import check


def _no_chat(v: Verdict, target: Target) -> bool:
    if target.profile.has_chat:
        return False
    v.missing("no chat server in this profile")
    return True


@check("ws.disconnects", holds=True)
def disconnects(v: Verdict, target: Target, attempt: int) -> None:
    p = target.profile
    if _no_chat(v, target):
        return
    token = None
    if p.chat.auth == "token":
        token = target.token()
        if token is None:
            v.error("login", p.backend.url, f"no token for the chat: {target.login_failure()}")
            return
    result = websocket.hold(target.transport, p.chat.url, token, p.holds.ws_hold_s, target.timeout("ws"),
                            p.chat.client_heartbeat_s, websocket.Frames.of(p.chat))
    if not v.record("hold", result):
        return
    m, events = result.measurements, "; ".join(result.evidence["events"])
    v.against("handshake_ms", m["handshake_ms"], label="handshake")
    if not v.require(not m.get("unanswered"), events):
        return
    if not p.chat.app_ping:
        v.missing("application Ping/Pong: not measured (chat.app_ping = false: this chat answers no Ping)")
    pong = f", Pong in {m['app_pong_ms']:.1f} ms" if "app_pong_ms" in m else ""
    v.require("closed_after_s" not in m, f"disconnected: {events} (hold {m['hold_s']:g} s, the client sending nothing "
              f"but answering the server's pings){_closed_by(p.holds.front_door_read_timeout_s, m)}",
              ok_text=f"held {m.get('held_s', 0):g} s idle{pong}")
    code = m["close_code"]
    v.require(code not in websocket.ABNORMAL and code is not None,
              f"close code {code} (abnormal) after {m['open_s']:g} s open: {events}", ok_text=f"close code {code}")


@check("ws.message_loss", holds=True)  # a paced conversation: 50 messages take 2.5 s
def message_loss(v: Verdict, target: Target, attempt: int) -> None:
    if _no_chat(v, target):
        return
    forbidden = target.may_send_chat()
    if forbidden:
        v.forbid(forbidden)
        return
    result = target.chat_delivery(attempt)
    if not v.record("delivery", result):
        return
    m, ev = result.measurements, result.evidence
    if not target.profile.chat.broadcast and m["received"] == 0:
        v.require(False, f"members do not get messages: this chat does not broadcast "
                         f"{target.profile.chat.delivered_type} (lost {m['lost']}/{m['sent']}; chat.broadcast = false "
                         "in the profile)")
        return
    for name, numbers in (("lost", ev["missing_numbers"]), ("duplicated", ev["duplicated_numbers"]),
                          ("reordered", ev["reordered_numbers"])):
        v.against(name, m[name], text=f"{name} {m[name]}/{m['sent']} messages" + (f" (#{numbers[:10]})" if numbers else ""))


@check("ws.high_latency", holds=True)  # the same conversation as ws.message_loss
def high_latency(v: Verdict, target: Target, attempt: int) -> None:
    if _no_chat(v, target):
        return
    forbidden = target.may_send_chat()
    if forbidden:
        v.forbid(forbidden)
        return
    result = target.chat_delivery(attempt)
    if not v.record("delivery", result):
        return
    m = result.measurements
    if m["received"] == 0:
        v.missing("no message reached client B: latency cannot be measured (see ws.message_loss)")
        return
    v.against_p95("delivery_p95_ms", result.evidence["delivery_ms"], label="A-to-B delivery", unit_of="messages")


def _closed_by(door_s: float, m: dict[str, float]) -> str:
    """Which timeout closed an idle chat: the front door's declared read timeout, or something before it."""
    closed = m.get("closed_after_s")
    if closed is None or door_s <= 0:
        return ""
    if closed >= 0.9 * door_s:
        return (f": the front door's read timeout (holds.front_door_read_timeout_s = {door_s:g} s), with nothing "
                "from the chat in that time (no server ping under it)")
    return f": before the front door's {door_s:g} s read timeout: the chat server, or another proxy, closed it"
