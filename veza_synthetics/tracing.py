"""Each check attempt as OpenTelemetry spans, to the team's OTLP/HTTP collector ([tracing] otlp_endpoint): a root
span per attempt in OpenTelemetry's test conventions (test.case.name, test.case.result.status, test.suite.name,
user_agent.synthetic.type = "test"), the symptom, the outcome and the verdict; under it a span per request, whose
span id is the one its traceparent carried (a backend that traces puts its own spans under it), and the hold, the
download and the chat delivery as spans of their own (probes/identity.py records them).

Exports leave from a thread of their own, each bounded by tracing.export_timeout_s; once the collector has refused
one, the run's other spans are dropped at once and the end of the run does not wait for it: a dead collector never
slows or fails a run. Its failures are counted and said once."""
from __future__ import annotations

import logging
import queue
import secrets
import sys
import threading
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from . import __version__
from .probes.identity import AttemptTrace, SpanRecord
from .redact import Redactor
from .settings import Tracing

SUITE = "veza-synthetics"
RESULT_STATUS = {"passed": "pass", "degraded": "pass", "failed": "fail", "no_data": "skipped", "skipped": "skipped",
                 "maintenance": "skipped"}  # test.case.result.status: pass or fail where judged
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class SpanExport:
    """The spans of a process's check attempts, on their way to one collector."""

    def __init__(self, config: Tracing, env: str, location: str, redactor: Redactor):
        self.endpoint = config.otlp_endpoint.rstrip("/") + "/v1/traces"
        self.redactor = redactor
        self._exporter = OTLPSpanExporter(endpoint=self.endpoint, headers=dict(config.otlp_headers),
                                          timeout=config.export_timeout_s)
        self._timeout_s = config.export_timeout_s
        self._resource = Resource.create({"service.name": SUITE, "service.version": __version__,
                                          "deployment.environment.name": env, "veza.location": location})
        self._scope = InstrumentationScope(SUITE, __version__)
        self._queue: queue.Queue[list[ReadableSpan] | None] = queue.Queue()
        self.exported = self.failed = 0  # attempts
        self._said = self._closed = False
        logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)  # said once, here, not per batch
        self._thread = threading.Thread(target=self._send, name="veza-span-export", daemon=True)
        self._thread.start()

    def attempt(self, trace: AttemptTrace, symptom_id: str, category: str, outcome: str, summary: str,
                started_ns: int) -> None:
        """One attempt's spans, queued (never waits for the collector)."""
        ended = time.time_ns()
        root = SpanContext(int(trace.trace_id, 16), int(secrets.token_hex(8), 16), is_remote=False, trace_flags=SAMPLED)
        attributes = {"test.case.name": symptom_id, "test.case.result.status": RESULT_STATUS.get(outcome, "fail"),
                      "test.suite.name": SUITE, "user_agent.synthetic.type": "test", "veza.symptom": symptom_id,
                      "veza.category": category, "veza.outcome": outcome, "veza.verdict": self.redactor.text(summary)}
        status = Status(StatusCode.ERROR, self.redactor.text(summary)[:200]) if outcome == "failed" else Status(StatusCode.OK)
        spans = [ReadableSpan(symptom_id, root, None, self._resource, attributes, kind=SpanKind.INTERNAL, status=status,
                              start_time=started_ns, end_time=ended, instrumentation_scope=self._scope)]
        spans += [self._child(record, root, ended) for record in list(trace.spans.values())]
        self._queue.put(spans)

    def _child(self, record: SpanRecord, root: SpanContext, attempt_ended_ns: int) -> ReadableSpan:
        context = SpanContext(root.trace_id, int(record.span_id, 16), is_remote=False, trace_flags=SAMPLED)
        code = record.attributes.get("http.response.status_code")
        failed = bool(record.error) or (isinstance(code, int) and code >= 500)
        status = Status(StatusCode.ERROR, self.redactor.text(record.error or f"HTTP {code}")) if failed \
            else Status(StatusCode.UNSET)
        kind = SpanKind.CLIENT if record.name.split(" ")[0].isupper() else SpanKind.INTERNAL  # "GET /x": a request
        attributes = {k: v for k, v in record.attributes.items() if v is not None}
        return ReadableSpan(record.name, context, root, self._resource, attributes, kind=kind, status=status,
                            start_time=record.start_ns, end_time=record.end_ns or attempt_ended_ns,
                            instrumentation_scope=self._scope)

    def _send(self) -> None:
        while (spans := self._queue.get()) is not None:
            if self._said:  # the collector refused once: the rest of the run's spans are dropped at once, counted
                self.failed += 1
                self._queue.task_done()
                continue
            try:
                result = self._exporter.export(spans)
            except Exception as exc:  # the exporter's own bug must not end the thread: counted, as a refusal
                result = SpanExportResult.FAILURE
                self._say(f"{type(exc).__name__}: {exc}")
            if result is SpanExportResult.SUCCESS:
                self.exported += 1
            else:
                self.failed += 1
                self._say(f"not accepted within {self._timeout_s:g} s")
            self._queue.task_done()

    def _say(self, why: str) -> None:
        if not self._said:
            self._said = True
            print(f"veza-synthetics: spans not exported to {self.endpoint} ({why}); the run goes on, "
                  "its traces are missing", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Wait for the queued attempts, at most one export's timeout for all of them (the rest are dropped,
        and said)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + self._timeout_s + 0.5
        while self._queue.unfinished_tasks and not self._said and time.monotonic() < deadline:
            time.sleep(0.02)
        left = self._queue.unfinished_tasks
        self._queue.put(None)
        if left and not self._said:  # a collector that said nothing in time (a refused one's drops are counted)
            self.failed += left
            self._say(f"{left} attempt(s) still queued at the end")

