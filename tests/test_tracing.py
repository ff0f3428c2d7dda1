"""Each check attempt as OpenTelemetry spans, found in a real Jaeger (built by `make setup`) through its query
API; a dead collector costs a run nothing and is said once."""
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from veza_synthetics.diagnosis import diagnose
from veza_synthetics.profile import load
from veza_synthetics.sandbox.jaeger import Jaeger
from veza_synthetics.target import Target


@pytest.fixture(scope="module")
def jaeger():
    server = Jaeger()
    server.start()
    yield server
    server.stop()


def _traced(tmp_path, sandbox, endpoint: str, timeout_s: float = 2.0):
    path = tmp_path / "traced.toml"
    path.write_text(f'extends = "{sandbox.profile_path}"\n[tracing]\notlp_endpoint = "{endpoint}"\n'
                    f'export_timeout_s = {timeout_s}\n')
    return load(str(path))


def _tags(span: dict) -> dict:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def test_a_failing_verdicts_trace_is_in_jaeger_with_the_requests_it_sent(sandbox, jaeger, tmp_path):
    profile = _traced(tmp_path, sandbox, jaeger.otlp_endpoint)
    with sandbox.faults_on(["auth.forbidden"]):
        with Target(profile) as target:
            record, verdict = diagnose("auth.http_401_403", target)
        backend_log = sandbox.admin.logs()["backend"]
    assert record.outcome == "failed", record.summary
    assert len(record.attempts) == 2  # confirmed: each attempt a trace of its own
    trace_id = record.attempts[-1]["trace_id"]
    assert verdict.trace_id == trace_id
    spans = jaeger.trace(trace_id)["spans"]
    root = next(s for s in spans if s["operationName"] == "auth.http_401_403")
    tags = _tags(root)
    assert tags["test.case.name"] == "auth.http_401_403" and tags["test.case.result.status"] == "fail"
    assert tags["test.suite.name"] == "veza-synthetics" and tags["user_agent.synthetic.type"] == "test"
    assert tags["veza.outcome"] == "failed" and "403" in tags["veza.verdict"]
    children = [s for s in spans if any(ref["spanID"] == root["spanID"] for ref in s["references"])]
    requests = [s for s in children if re.match(r"(GET|POST) /", s["operationName"])]
    assert requests, [s["operationName"] for s in spans]
    assert any(_tags(s).get("http.response.status_code") == 403 for s in requests), [_tags(s) for s in requests]
    # each request span is the one its traceparent named: the backend logged the same ids
    sent = set(re.findall(rf"traceparent=00-{trace_id}-([0-9a-f]{{16}})-01", "\n".join(backend_log)))
    assert sent and sent <= {s["spanID"] for s in requests}, (sent, [s["spanID"] for s in requests])


def test_a_dead_collector_costs_a_check_nothing_and_is_said_once(sandbox, tmp_path, capfd):
    with socket.socket() as refusing:  # bound, never listening: refused, and no other server can take it
        refusing.bind(("127.0.0.1", 0))
        profile = _traced(tmp_path, sandbox, f"http://127.0.0.1:{refusing.getsockname()[1]}", timeout_s=0.5)
        with Target(profile) as target:
            records = [diagnose(sid, target)[0] for sid in ("health.services", "auth.http_401_403")]
            spans = target.client.spans
    assert [r.outcome for r in records] == ["passed", "passed"], [r.summary for r in records]
    assert spans is not None and spans.exported == 0 and spans.failed == 2
    said = capfd.readouterr().err
    assert said.count("spans not exported") == 1, said


def test_a_teams_own_check_is_a_trace_too(sandbox, jaeger, tmp_path):
    """veza_verdict's attempts go to the same collector, named by the team's own check id."""
    example = Path(__file__).with_name("example_team_check.py")
    shutil.copy(example, tmp_path / "test_team.py")
    profile = tmp_path / "traced.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n[tracing]\notlp_endpoint = "{jaeger.otlp_endpoint}"\n')
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_team.py"), "--env", str(profile),
                           "-k", "track_listing", "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "r")],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    results = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    [record] = [c for c in results["checks"] if c["id"] == "team.tracks_listing"]
    spans = jaeger.trace(record["attempts"][0]["trace_id"])["spans"]
    assert any(s["operationName"] == "team.tracks_listing" for s in spans), (done.stdout[-1500:], spans)
