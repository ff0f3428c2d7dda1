"""Each check result as an Elastic Common Schema line (reports/ecs.py), checked against ECS's own field types:
written by a run beside results.json, and by serve on stdout with --log-format ecs."""
import contextlib
import json
import re
import select
import subprocess
import sys
from pathlib import Path

from ecs_fields import problems

REPO = Path(__file__).resolve().parents[1]


def test_a_runs_results_are_ecs_lines_one_per_check(sandbox, tmp_path):
    reports = tmp_path / "reports"
    with sandbox.faults_on(["auth.forbidden"]):
        done = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(sandbox.profile_path),
                               "--symptoms", "auth.http_401_403,health.services", "-p", "no:cacheprovider",
                               "--reports-dir", str(reports)], cwd=REPO, capture_output=True, text=True, timeout=300)
    folder = (reports / "latest").resolve()
    results = json.loads((folder / "results.json").read_text())
    lines = (folder / "checks.ecs.ndjson").read_text().splitlines()
    assert len(lines) == len(results["checks"]) >= 2, done.stdout[-2000:]
    for line in lines:
        assert not problems(line), (problems(line), line)
    by_check = {json.loads(line)["event"]["action"]: json.loads(line) for line in lines}
    failed = by_check["auth.http_401_403"]
    record = next(c for c in results["checks"] if c["id"] == "auth.http_401_403")
    assert failed["event"]["outcome"] == "failure" and failed["log.level"] == "error"
    assert failed["trace"]["id"] == record["attempts"][-1]["trace_id"]
    assert failed["message"] == record["summary"] and failed["event"]["duration"] == int(record["duration_s"] * 1e9)
    assert failed["labels"] == {"env": results["env"], "location": results["location"], "symptom": "auth.http_401_403",
                                "variant": "read-only"}
    assert by_check["health.services"]["event"]["outcome"] == "success"
    profile = (sandbox.profile_path).read_text()
    password = re.search(r'user_password = "([^"]+)"', profile)[1]
    assert password not in "\n".join(lines)


def test_serve_writes_each_rounds_results_as_ecs_lines_on_stdout(sandbox, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "veza_synthetics", "serve", "--env", str(sandbox.profile_path),
                             "--symptoms", "health.services", "--log-format", "ecs", "--listen", "127.0.0.1:0",
                             "--history", str(tmp_path / "history")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "/metrics" in proc.stderr.readline()  # its own lines on stderr, the results alone on stdout
        ready, _, _ = select.select([proc.stdout], [], [], 120)  # the first round's line, or the test fails
        assert ready, "no ECS line within 120 s"
        line = proc.stdout.readline()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        proc.wait(timeout=60)
    assert not problems(line), (problems(line), line)
    doc = json.loads(line)
    assert doc["event"]["action"] == "health.services" and doc["service"]["name"] == "veza-synthetics"
