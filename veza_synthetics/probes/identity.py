"""Every request the suite sends is findable on the platform: a W3C `traceparent` (one trace per check
attempt, sampled, a span per request), a request id, and a User-Agent naming the suite, so traces, access
logs and dashboards can find, or filter out, synthetic traffic (what Checkly and Datadog synthetics do;
OpenTelemetry calls it `user_agent.synthetic.type`). The profile's `[tracing]` section names the headers
and whether to send them: some front doors strip or refuse unknown headers."""
from __future__ import annotations

import contextvars
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from ..settings import Tracing


@dataclass(frozen=True)
class Sent:
    """The ids one request carried, kept with its figure so a verdict can name it."""
    trace_id: str
    span_id: str
    request_id: str

    def as_dict(self) -> dict[str, str]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "request_id": self.request_id}


_trace: contextvars.ContextVar[str] = contextvars.ContextVar("veza_trace_id", default="")


def trace_id() -> str:
    """The current check attempt's trace id (a fresh one outside any attempt)."""
    return _trace.get() or secrets.token_hex(16)


@contextmanager
def attempt_trace() -> Iterator[str]:
    """One trace for everything a check attempt sends (threads and event loops it starts inherit it)."""
    token = _trace.set(secrets.token_hex(16))
    try:
        yield _trace.get()
    finally:
        _trace.reset(token)


def new_request(config: Tracing) -> tuple[dict[str, str], Sent]:
    """The headers of one request, as the profile's [tracing] chooses them, and the ids they carry."""
    sent = Sent(trace_id(), secrets.token_hex(8), f"veza-synth-{secrets.token_hex(8)}")
    headers = {}
    if config.traceparent:
        headers["traceparent"] = f"00-{sent.trace_id}-{sent.span_id}-01"
    if config.request_id_header:
        headers[config.request_id_header] = sent.request_id
    if config.user_agent:
        headers["User-Agent"] = config.user_agent
    return headers, sent


def sent_ids(sent: Sent, response_headers: Mapping[str, str] | None, name: str) -> dict[str, str]:
    """The ids of one request for its evidence, with the request id the server answered with (in header
    `name`) where it differs from the one sent (its own, or a proxy's)."""
    out = sent.as_dict()
    answered = response_headers.get(name) if response_headers is not None and name else None
    if answered and answered != sent.request_id:
        out["echoed_request_id"] = str(answered)
    return out
