"""The environment under test: its profile, plus measurements shared by several checks.

One stream download serves the three stream checks, one chat run serves loss and
latency, one HTTP sample serves the perf checks. A confirmation (attempt 2) measures
again instead of reusing attempt 1.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from typing import Callable

from .probes import Result, auth, http, stream, websocket
from .profile import Profile

CONTRACT_KBPS = {"high": 320, "medium": 192, "low": 128, "mobile": 96}


class Target:
    def __init__(self, profile: Profile):
        self.profile = profile
        self._memo: dict = {}
        self._sessions: list[auth.Session] = []
        self.last_login: Result | None = None

    def timeout(self, kind: str) -> float:
        return self.profile["timeouts"][f"{kind}_s"]

    def shared(self, key: str, attempt: int, measure: Callable[[], object]):
        if (key, attempt) not in self._memo:
            self._memo[(key, attempt)] = measure()
        return self._memo[(key, attempt)]

    # -- the synthetic account ----------------------------------------------------------
    def login(self, admin: bool = False) -> Result:
        acc = self.profile["accounts"]
        who = "admin" if admin else "user"
        return auth.login(self.profile["backend"]["url"], acc[f"{who}_email"], acc[f"{who}_password"],
                          self.timeout("request"))

    def fresh_session(self) -> Result:
        """A login of its own for each consumer, so a short token or session lifetime only fails the
        checks that judge lifetimes; every such session is logged out by close()."""
        result = self.login()
        if isinstance(result.handle, auth.Session):
            self._sessions.append(result.handle)
        return result

    def token(self) -> str | None:
        result = self.fresh_session()
        self.last_login = result
        return result.handle.access_token if isinstance(result.handle, auth.Session) else None

    def close(self) -> None:
        for session in self._sessions:
            auth.logout(self.profile["backend"]["url"], session, self.timeout("request"))
        self._sessions.clear()

    # -- shared measurements --------------------------------------------------------------
    def chat_delivery(self, attempt: int) -> Result:
        chat = self.profile["chat"]
        token = self.token() if chat["auth"] == "token" else None
        return self.shared("chat", attempt, lambda: websocket.delivery(
            chat["url"], token, self.profile["sampling"]["chat_messages"], self.timeout("ws")))

    def http_sample(self, attempt: int) -> Result:
        backend, sampling = self.profile["backend"], self.profile["sampling"]
        endpoints = {"health": backend["health_path"], "tracks": "/api/v1/tracks?limit=20",
                     "search": "/api/v1/search?q=Track%201", "me": "/api/v1/auth/me"}

        def measure() -> Result:
            token = self.token()
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            result = http.sample(backend["url"], endpoints, headers, sampling["requests"], sampling["concurrency"],
                                 self.timeout("request"))
            result.evidence["login"] = "ok" if token else str(self.last_login.error or self.last_login.evidence)
            return result
        return self.shared("http", attempt, measure)

    def stream_url(self, attempt: int) -> tuple[str | None, Result | None]:
        """A signed canary URL: signed locally with the profile's secret, else asked of the backend."""
        cfg = self.profile["stream"]
        if cfg["secret"]:
            expires = int(time.time()) + 300
            sig = hmac.new(cfg["secret"].encode(), f"{cfg['canary']}:{expires}".encode(), hashlib.sha256).hexdigest()
            return f"{cfg['url']}/stream/{cfg['canary']}?expires={expires}&sig={sig}&quality={cfg['quality']}", None
        result = auth.request(self.profile["backend"]["url"], "GET",
                              f"/api/v1/tracks/{cfg['canary_track_id']}/stream-url?quality={cfg['quality']}",
                              self.timeout("request"), token=self.token())
        if result.error or result.measurements.get("status") != 200:
            return None, result
        return (result.handle[1].get("data") or {}).get("url"), None

    def track_duration(self) -> float | None:
        cfg = self.profile["stream"]
        info = http.fetch(f"{cfg['url']}/info/{cfg['canary']}", self.timeout("request"))
        body = info.evidence.get("body") if not info.error else None
        return float(body["duration_s"]) if isinstance(body, dict) and "duration_s" in body else None

    def stream_download(self, attempt: int) -> Result:
        def measure() -> Result:
            url, failure = self.stream_url(attempt)
            if url is None:
                failure = failure or Result("stream", self.profile["stream"]["url"], error="no stream URL")
                return Result("stream", failure.target, failure.measurements, failure.evidence,
                              error=f"could not get a signed stream URL: {failure.error or failure.evidence}")
            quality = self.profile["stream"]["quality"]
            dl = stream.download(url, self.timeout("connect"), self.timeout("stream_read"), self.timeout("stream"))
            return stream.analyse(dl, url, CONTRACT_KBPS[quality], self.track_duration() or 0.0)
        return self.shared("stream", attempt, measure)
