"""How the suite reaches one platform, as long as its owner lives (a run's Target, or serve's Client for
months): the TLS trust of its endpoints, the headers that make each request findable (identity.py), the
API's pace (pacing.py) and whether each endpoint still answers (answering.py). Every probe takes it as its
first argument, as blackbox_exporter's probers take their module: nothing here is read from a global, so
two profiles in one process never share a pace, a trust or an endpoint's silence."""
from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..settings import Tracing
from . import NOT_CONNECTED, NotAnswering, address, browser, describe, no_answer, verifying_context
from .answering import Endpoint
from .budget import Budget
from .identity import Sent, new_request, sent_ids
from .pacing import OriginPace, retry_after_s


class Halted(NotAnswering):
    """Not sent: the pace was halted (its owner is stopping)."""


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class Turn:
    """A request's turn at its API's pace, given back when the request never reached the platform."""
    pace: OriginPace | None = None
    at: float = 0.0
    halted: bool = False  # none was given: the pace is halted, the request is not sent

    def give_back(self) -> None:
        if self.pace is not None:
            self.pace.give_back(self.at)


class Transport:
    def __init__(self, *, api_url: str = "", max_rps: float = 0.0, ca_file: str = "", trusted: tuple[str, ...] = (),
                 guarded: tuple[str, ...] = (), retry_s: float = 15.0, tracing: Tracing | None = None,
                 request_budget: Budget | None = None):
        """`api_url`'s origin is paced at `max_rps` (and within `request_budget` where one is given); `trusted`
        URLs are verified with `ca_file` as well as the public CAs; `guarded` host:port
        addresses are not asked again while they leave their exchanges unanswered (tried again every `retry_s`)."""
        if ca_file:
            verifying_context(ca_file)  # an unreadable CA file fails here, once
        self.tracing = tracing or Tracing()
        self._trusted = {address(url): ca_file for url in trusted if url and ca_file}
        self.api_origin = origin(api_url) if api_url else ""
        self.pace = OriginPace(max_rps, request_budget) if api_url and max_rps > 0 else None
        self.endpoints = {a: Endpoint(a, retry_s) for a in sorted(set(guarded))}

    # -- trust ------------------------------------------------------------------------------------------
    def tls(self, url: str) -> ssl.SSLContext:
        """The verifying context for this endpoint: the profile's private CA where it names one, else the
        public CAs. Verification stays on everywhere."""
        return verifying_context(self._trusted.get(address(url), ""))

    # -- identity ---------------------------------------------------------------------------------------
    def marks(self, name: str) -> tuple[dict[str, str], Sent]:
        """The headers of one request ("GET /api/v1/tracks": its span's name) and the ids they carry."""
        return new_request(self.tracing, name)

    def ids(self, sent: Sent, response_headers: Mapping[str, str] | None, status: int | None = None,
            error: str = "") -> dict[str, str]:
        """The ids one request carried, for its evidence, once it is answered (or failed): its span ends."""
        return sent_ids(sent, response_headers, self.tracing.request_id_header, status, error)

    # -- pace -------------------------------------------------------------------------------------------
    def pace_of(self, url: str) -> OriginPace | None:
        """The pace of the API's origin; other origins are not paced."""
        return self.pace if self.pace is not None and origin(url) == self.api_origin else None

    def take_turn(self, url: str) -> Turn:
        """Wait for the turn at this API (the checks' calls count with the sample's); a caller timing its
        request takes its turn first, so no figure holds the wait, and hands it to request()."""
        pace, endpoint = self.pace_of(url), self.endpoints.get(address(url))
        if pace is None or (endpoint is not None and endpoint.silent()):  # request() says "not sent" at once
            return Turn()
        at = pace.wait()
        return Turn(pace, at) if at is not None else Turn(halted=True)

    # -- answering --------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def guarded(self, host_port: str, timeout_s: float) -> Iterator[None]:
        """Around one exchange with a guarded endpoint: not sent while it is not answering (NotAnswering),
        and counted as answered or not."""
        endpoint = self.endpoints.get(host_port)
        if endpoint is None:
            yield
            return
        reason = endpoint.not_answering()
        if reason:
            raise NotAnswering(reason)
        sent_at = time.monotonic()
        try:
            yield
        except Exception as exc:  # a cancelled exchange says nothing either way
            if no_answer(exc):
                endpoint.unanswered(describe(exc, timeout_s), sent_at)
            else:
                endpoint.answered()
            raise
        endpoint.answered()

    # -- one call ---------------------------------------------------------------------------------------
    def request(self, method: str, url: str, timeout_s: float, headers: dict[str, str] | None = None,
                turn: Turn | None = None, **kwargs: Any) -> tuple[httpx.Response, dict[str, str]]:
        """A single API call on connections kept alive per origin, as a browser keeps them, so its latency is
        the request's, not a fresh TCP and TLS handshake, and the ids it carried. No cookie outlives the call:
        one check's session never leaks into another's. A 429 pauses the pace for its Retry-After; a connection
        that never opened gives its turn back."""
        turn = turn or Turn()
        if turn.halted:
            raise Halted("not sent: the prober is stopping")
        client = browser(self.tls(url))
        marks, sent = self.marks(f"{method} {urlsplit(url).path or '/'}")
        try:
            with self.guarded(address(url), timeout_s):
                response = client.request(method, url, timeout=timeout_s, headers={**marks, **(headers or {})},
                                          **kwargs)
        except NOT_CONNECTED + (NotAnswering,) as exc:
            turn.give_back()
            self.ids(sent, None, error=type(exc).__name__)
            raise
        except httpx.HTTPError as exc:
            self.ids(sent, None, error=type(exc).__name__)
            raise
        finally:
            client.cookies.clear()
        pace = self.pace_of(url)
        if pace is not None and response.status_code == 429:
            pace.pause(retry_after_s(response.headers.get("retry-after")))
        return response, self.ids(sent, response.headers, response.status_code)
