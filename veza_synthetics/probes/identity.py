"""Every request the suite sends is findable on the platform: a W3C `traceparent` (one trace per check
attempt, sampled, a span per request), a request id, and a User-Agent naming the suite, so traces, access
logs and dashboards can find, or filter out, synthetic traffic (what Checkly and Datadog synthetics do;
OpenTelemetry calls it `user_agent.synthetic.type`). The profile's `[tracing]` section names the headers
and whether to send them: some front doors strip or refuse unknown headers."""
from __future__ import annotations

import contextvars
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..settings import Tracing


@dataclass(frozen=True)
class Sent:
    """The ids one request carried, kept with its figure so a verdict can name it."""
    trace_id: str
    span_id: str
    request_id: str

    def as_dict(self) -> dict[str, str]:
        return {"trace_id": self.trace_id, "span_id": self.span_id, "request_id": self.request_id}


@dataclass
class SpanRecord:
    """One timed piece of a check attempt, kept to be exported as a span (tracing.py): a request, whose id is
    the one its traceparent carried, or a phase of its own (the hold, the download, the chat delivery)."""
    name: str
    span_id: str
    start_ns: int
    end_ns: int = 0  # 0: never ended (its answer never came); exported as ending with the attempt
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class AttemptTrace:
    """A check attempt's trace: its id, and the spans its requests and phases recorded."""
    trace_id: str
    spans: dict[str, SpanRecord]  # by span id, in the order they started


_trace: contextvars.ContextVar[AttemptTrace | None] = contextvars.ContextVar("veza_trace", default=None)


def trace_id() -> str:
    """The current check attempt's trace id (a fresh one outside any attempt)."""
    current = _trace.get()
    return current.trace_id if current else secrets.token_hex(16)


@contextmanager
def attempt_trace() -> Iterator[AttemptTrace]:
    """One trace for everything a check attempt sends (threads and event loops it starts inherit it)."""
    token = _trace.set(AttemptTrace(secrets.token_hex(16), {}))
    try:
        yield _trace.get()  # type: ignore[misc]  # set just above
    finally:
        _trace.reset(token)


def span(name: str, started_ns: int, error: str = "", attributes: dict[str, Any] | None = None) -> None:
    """A phase of the current attempt, from started_ns to now, as a span of its own (nothing outside an attempt)."""
    current = _trace.get()
    if current is not None:
        record = SpanRecord(name, secrets.token_hex(8), started_ns, time.time_ns(), attributes or {}, error)
        current.spans[record.span_id] = record


def new_request(config: Tracing, name: str) -> tuple[dict[str, str], Sent]:
    """The headers of one request, as the profile's [tracing] chooses them, and the ids they carry; the request
    starts its span in the current attempt."""
    sent = Sent(trace_id(), secrets.token_hex(8), f"veza-synth-{secrets.token_hex(8)}")
    current = _trace.get()
    if current is not None:
        current.spans[sent.span_id] = SpanRecord(name, sent.span_id, time.time_ns(), attributes={
            "veza.request_id": sent.request_id, "user_agent.synthetic.type": "test"})
    headers = {}
    if config.traceparent:
        headers["traceparent"] = f"00-{sent.trace_id}-{sent.span_id}-01"
    if config.request_id_header:
        headers[config.request_id_header] = sent.request_id
    if config.user_agent:
        headers["User-Agent"] = config.user_agent
    return headers, sent


def sent_ids(sent: Sent, response_headers: Mapping[str, str] | None, name: str, status: int | None = None,
             error: str = "") -> dict[str, str]:
    """The ids of one request for its evidence, with the request id the server answered with (in header
    `name`) where it differs from the one sent (its own, or a proxy's); its span ends here, with its status."""
    current = _trace.get()
    record = current.spans.get(sent.span_id) if current is not None else None
    if record is not None:
        record.end_ns, record.error = time.time_ns(), error
        if status is not None:
            record.attributes["http.response.status_code"] = status
    out = sent.as_dict()
    answered = response_headers.get(name) if response_headers is not None and name else None
    if answered and answered != sent.request_id:
        out["echoed_request_id"] = str(answered)
    return out
