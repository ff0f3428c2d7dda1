"""The backend's own chat, as both public backend servers serve it at /ws/chat (gorilla, C6).

A token in the query string (none or an invalid one: HTTP 401 before the upgrade, as
`HandleWebSocket` answers); then no confirmation, no Pong, no ping of its own: every text
frame is sent on, as it came, to every connected client, its sender included. The hub lives
in one backend process, as in the Go code; the front door sends /ws/chat to one instance,
as the historical HAProxy had a single backend.
"""
from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import jwt
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

EVERYONE = "(every client of /ws/chat)"  # where the write recorder counts what this chat re-broadcast


class BackendChat:
    def __init__(self, decode: Callable[[str], dict[str, Any]], sent: Counter[str]):
        self._decode = decode
        self.sent = sent  # frames re-broadcast per conversation named in them: the chat writes they are
        self.clients: set[WebSocket] = set()

    def _refusal(self, token: str) -> str | None:
        """Why the token is refused, in the Go code's words; None for an unexpired access token of the
        backend's (the Go chat checks the JWT, not the session)."""
        if not token:
            return "Token manquant"
        try:
            claims = self._decode(token)
        except jwt.InvalidTokenError:
            return "Token invalide"
        return None if claims.get("typ") != "refresh" and float(claims.get("exp", 0)) >= time.time() else "Token invalide"

    async def endpoint(self, ws: WebSocket) -> None:
        refused = self._refusal(ws.query_params.get("token", ""))
        if refused:
            await ws.send_denial_response(JSONResponse({"error": refused}, 401))
            return
        await ws.accept()
        self.clients.add(ws)
        try:
            while True:
                text = await ws.receive_text()
                self._count(text)
                for client in list(self.clients):
                    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                        await client.send_text(text)
        except WebSocketDisconnect:
            pass
        finally:
            self.clients.discard(ws)

    def _count(self, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        if isinstance(frame, dict) and frame.get("type") == "SendMessage":
            self.sent[str(frame.get("conversation_id") or EVERYONE)] += 1
