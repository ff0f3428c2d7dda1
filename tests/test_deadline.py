"""A run fits its time: under a real fault every selected check has its record and its verdict, none is
killed by the harness's timeout; the sample is planned within the run's deadline and stops at it; a
confirmation samples again only what failed.

Production's pace on the sandbox's time scale (sandbox/limits.py, 125 times faster): pytest.ini's 300 s
timeout against an 80-request sample at 0.4 a second (200 s, a confirmation as much again) is 2.4 s against
the sandbox profile's 80 requests at 50 a second. The run's deadline is 30 s here, not 900 s scaled (7.2 s):
the faults' own delays (400 ms a response, a 2 s login timeout) are in real seconds.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from veza_synthetics.client import transport
from veza_synthetics.planning import plan
from veza_synthetics.probes import http, politeness
from veza_synthetics.sandbox.limits import TIME_SCALE

REPO = Path(__file__).resolve().parents[1]
HARNESS_TIMEOUT_S = 300 / TIME_SCALE
RUN_S = 30.0
SAMPLED = ["perf.high_response_time", "perf.frequent_timeouts", "perf.error_rate", "auth.http_401_403"]


def _run(sandbox, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, dict]]:
    profile = tmp_path / "deadline.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n' + textwrap.dedent(f"""\
        [timeouts]
        run_s = {RUN_S}
        """))
    run = subprocess.run([sys.executable, "-m", "veza_synthetics", "run", "--env", str(profile), "--symptoms",
                          ",".join(SAMPLED), "--reports-dir", str(tmp_path / "r"), "-o", f"timeout={HARNESS_TIMEOUT_S}"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    results = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    return run, {c["id"]: c for c in results["checks"] if c["variant"] == "read-only"}


@pytest.mark.parametrize("fault,failing,again", [
    ("infra.postgres_down", [], None),
    ("perf.latency", ["perf.high_response_time"], None),
    ("front.instance_rejects_tokens", ["auth.http_401_403"], None),
    ("db.lock_held", ["perf.frequent_timeouts"], "tracks, search"),  # the reads of the locked table, nothing else
])
def test_under_a_real_fault_every_check_has_its_verdict_in_time(sandbox, tmp_path, fault, failing, again):
    with sandbox.faults_on([fault]):
        run, checks = _run(sandbox, tmp_path)
    assert "Timeout" not in run.stdout + run.stderr, run.stdout[-3000:]
    assert set(checks) == set(SAMPLED), run.stdout[-3000:]
    for sid, check in checks.items():
        assert check["summary"].startswith(f"{sid}: ") and "could not complete" not in check["summary"], check
    for sid in failing:
        check = checks[sid]
        assert check["outcome"] == "failed" and len(check["attempts"]) == 2, check["summary"]
        notes = check["notes"]
        assert any(n.startswith("confirmation: sampled again: ") for n in notes), notes
        if again:  # the confirmation samples again what failed, not the whole sample
            assert f"confirmation: sampled again: {again} (what failed in the first sample)" in notes, notes


def test_the_sample_is_planned_within_the_deadline_and_stops_at_it(sandbox_profile):
    """At production's pace a 15-minute run affords the whole sample with its confirmation; a 5-minute one
    does not, and the plan says how many requests it affords. A sample whose deadline comes stops there and
    says so: the requests it sent are judged, the others named as not sent."""
    import time
    production = sandbox_profile.with_changes("sampling", max_rps=0.4)
    assert plan(production).sample_requests == 80 and not plan(production).note
    short = production.with_changes("timeouts", run_s=300.0)
    assert plan(short).sample_requests == 9, plan(short)
    assert "a sample of 9 requests, not sampling.requests = 80" in plan(short).note
    p = sandbox_profile
    pace = politeness.Pace(80, 2, 20.0, deadline=time.monotonic() + 0.5)
    started = time.monotonic()
    result = http.sample(transport(p), p.backend.url, {"health": p.backend.health_path}, {}, pace, 2.0)
    assert time.monotonic() - started < 2.0
    assert 0 < result.measurements["requests"] < 80 and result.measurements["abandoned"] > 0
    assert result.evidence["gave_up"].startswith("the run's deadline came (timeouts.run_s): the other ")
