"""Every request the suite sends is findable on the platform: a traceparent (one trace per check attempt),
a request id and a User-Agent naming the suite; the ids a failing report names are in the sandbox's
front-door access log and backend request log, where an on-call engineer looks."""
import re

from veza_synthetics.matrix import measure
from veza_synthetics.probes import identity

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


def test_a_failing_reports_requests_are_in_the_platforms_logs(sandbox, sandbox_profile):
    with sandbox.faults_on(["perf.latency"]):
        [record] = measure(sandbox_profile, ["perf.high_response_time"])
    assert record.outcome == "failed", record.summary
    slowest = record.evidence["sample"]["slowest"]
    traces = {a["trace_id"] for a in record.attempts}
    assert len(traces) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", t) for t in traces), "a trace per attempt"
    assert {r["trace_id"] for r in slowest} <= traces and all(r["ms"] > 400 for r in slowest[:1])
    logs = sandbox.admin.logs()
    for named in slowest:
        access = [line for line in logs["access"] if f"rid={named['request_id']} " in line]
        assert len(access) == 1 and f"traceparent=00-{named['trace_id']}-" in access[0], named
        assert 'ua="veza-synthetics/' in access[0]
        backend = [line for line in logs["backend"] if f"request_id={named['request_id']} " in line]
        assert len(backend) == 1 and f"traceparent=00-{named['trace_id']}-" in backend[0], named


def test_the_headers_are_the_profiles_to_choose():
    from veza_synthetics.settings import Tracing
    with identity.attempt_trace() as attempt:
        headers, sent = identity.new_request(Tracing(), "GET /")
        again, _ = identity.new_request(Tracing(), "GET /")
    trace = attempt.trace_id
    match = TRACEPARENT.match(headers["traceparent"])
    assert match and match[1] == trace == sent.trace_id and match[2] == sent.span_id
    assert again["traceparent"] != headers["traceparent"] and again["traceparent"].startswith(f"00-{trace}-")
    assert list(attempt.spans) == [sent.span_id, TRACEPARENT.match(again["traceparent"])[2]]  # each request a span
    assert headers["X-Request-ID"] == sent.request_id and headers["User-Agent"].startswith("veza-synthetics/")
    assert identity.sent_ids(sent, {"X-Request-ID": "edge-42"}, "X-Request-ID")["echoed_request_id"] == "edge-42"
    quiet = Tracing(traceparent=False, request_id_header="", user_agent="")
    assert identity.new_request(quiet, "GET /")[0] == {}, "a front door that refuses unknown headers gets none"
