"""The environment under test: its profile, plus measurements shared by several checks.

One stream download serves the three stream checks, one chat run serves loss and
latency, one HTTP sample serves the perf checks. A confirmation (attempt 2) measures
again instead of reusing attempt 1.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import TypeVar

from .probes import Result, auth, http, stream, trust, websocket
from .profile import Profile

CONTRACT_KBPS = {"high": 320, "medium": 192, "low": 128, "mobile": 96}
ResultT = TypeVar("ResultT", bound=Result)


class Target:
    def __init__(self, profile: Profile):
        self.profile = profile
        trust(profile.tls.ca_file)
        self._memo: dict[tuple[str, int], Result] = {}
        self._sessions: list[auth.Session] = []
        self.last_login: auth.LoginResult | None = None

    def timeout(self, kind: str) -> float:
        """A profile timeout by kind: connect, request, stream_read, stream, ws."""
        value: float = getattr(self.profile.timeouts, f"{kind}_s")
        return value

    def shared(self, key: str, attempt: int, measure: Callable[[], ResultT]) -> ResultT:
        if (key, attempt) not in self._memo:
            self._memo[(key, attempt)] = measure()
        return self._memo[(key, attempt)]  # type: ignore[return-value]  # one key, one measure

    # -- the synthetic account ----------------------------------------------------------
    def login(self, admin: bool = False) -> auth.LoginResult:
        """A login of its own for each consumer, so a short token or session lifetime only fails the
        checks that judge lifetimes; every session is logged out by close()."""
        acc = self.profile.accounts
        email, password = (acc.admin_email, acc.admin_password) if admin else (acc.user_email, acc.user_password)
        result = auth.login(self.profile.backend.url, email, password, self.timeout("request"))
        if result.session is not None:
            self._sessions.append(result.session)
        return result

    def token(self) -> str | None:
        result = self.login()
        self.last_login = result
        return result.session.access_token if result.session else None

    def login_failure(self) -> str:
        """Why the last token() gave none."""
        last = self.last_login
        if last is None:
            return "no login attempted"
        return last.error or f"login answered {last.measurements.get('status')}: {last.evidence.get('error')}"

    def close(self) -> None:
        for session in self._sessions:
            auth.logout(self.profile.backend.url, session, self.timeout("request"))
        self._sessions.clear()

    # -- shared measurements --------------------------------------------------------------
    def chat_delivery(self, attempt: int) -> Result:
        chat = self.profile.chat

        def measure() -> Result:
            token = self.token() if chat.auth == "token" else None
            if chat.auth == "token" and token is None:
                return Result("websocket", chat.url, error=f"no token for the chat: {self.login_failure()}")
            return websocket.delivery(chat.url, token, self.profile.sampling.chat_messages, self.timeout("ws"))
        return self.shared("chat", attempt, measure)

    def http_sample(self, attempt: int) -> Result:
        backend, sampling = self.profile.backend, self.profile.sampling
        endpoints = {"health": backend.health_path, "tracks": "/api/v1/tracks?limit=20",
                     "search": "/api/v1/search?q=Track%201", "me": "/api/v1/auth/me"}

        def measure() -> Result:
            token = self.token()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            result = http.sample(backend.url, endpoints, headers, sampling.requests, sampling.concurrency,
                                 self.timeout("request"))
            result.evidence["login"] = "ok" if token else self.login_failure()
            return result
        return self.shared("http", attempt, measure)

    def stream_url(self) -> tuple[str | None, Result | None]:
        """A signed canary URL: signed locally with the profile's secret, else asked of the backend."""
        cfg = self.profile.stream
        if cfg.secret:
            expires = int(time.time()) + 300
            sig = hmac.new(cfg.secret.encode(), f"{cfg.canary}:{expires}".encode(), hashlib.sha256).hexdigest()
            return f"{cfg.url}/stream/{cfg.canary}?expires={expires}&sig={sig}&quality={cfg.quality}", None
        result = auth.request(self.profile.backend.url, "GET",
                              f"/api/v1/tracks/{cfg.canary_track_id}/stream-url?quality={cfg.quality}",
                              self.timeout("request"), token=self.token())
        if result.error or result.measurements.get("status") != 200:
            return None, result
        url = (result.body.get("data") or {}).get("url")
        return (url if isinstance(url, str) else None), result

    def track_duration(self) -> float | None:
        cfg = self.profile.stream
        info = http.fetch(f"{cfg.url}/info/{cfg.canary}", self.timeout("request"))
        body = info.evidence.get("body") if not info.error else None
        return float(body["duration_s"]) if isinstance(body, dict) and "duration_s" in body else None

    def stream_download(self, attempt: int) -> Result:
        def measure() -> Result:
            url, signing = self.stream_url()
            if url is None:
                reason = (signing.error or signing.evidence) if signing else "no stream URL"
                return Result("stream", signing.target if signing else self.profile.stream.url,
                              error=f"could not get a signed stream URL: {reason}")
            quality = self.profile.stream.quality
            dl = stream.download(url, self.timeout("connect"), self.timeout("stream_read"), self.timeout("stream"))
            return stream.analyse(dl, url, CONTRACT_KBPS[quality], self.track_duration() or 0.0)
        return self.shared("stream", attempt, measure)
