"""Several locations, one verdict: `veza-synth merge` by quorum over real runs of the sandbox."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VEZA_SYNTH = [sys.executable, "-m", "veza_synthetics"]


def _location(sandbox, tmp_path: Path, location: str, fault: str | None) -> Path:
    with sandbox.faults_on([fault] if fault else []):
        subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(sandbox.profile_path),
                        "-p", "no:cacheprovider", "-q", "--reports-dir", str(tmp_path / location), "--location",
                        location, "--symptoms", "stream.audio_cut,auth.jwt_expired"], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    return tmp_path / location / "latest" / "results.json"


def _merge(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "merged"
    run = subprocess.run([*VEZA_SYNTH, "merge", *args, "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    checks = {c["id"]: c for c in json.loads((out / "results.json").read_text())["checks"]} if run.returncode < 2 else {}
    return run, checks


def test_a_check_fails_at_quorum_and_is_a_partial_outage_below_it(sandbox, tmp_path):
    paris = _location(sandbox, tmp_path, "paris", "stream.truncate")
    tokyo = _location(sandbox, tmp_path, "tokyo", "stream.truncate")
    ohio = _location(sandbox, tmp_path, "ohio", None)
    run, checks = _merge(tmp_path, str(paris), str(tokyo), str(ohio))  # majority: 2 of 3
    assert run.returncode == 1 and "quorum 2" in run.stdout
    audio = checks["stream.audio_cut"]
    assert audio["outcome"] == "failed" and "failed in 2 of 3 location(s): paris, tokyo" in audio["summary"]
    assert audio["per_location"]["ohio"]["outcome"] == "passed" and checks["auth.jwt_expired"]["outcome"] == "passed"
    strict = tmp_path / "three-of-three.toml"  # the production profile's secrets are not needed to merge
    strict.write_text(f'extends = "{REPO}/fixtures/environments/production.toml"\nquorum = 3\n')
    run, checks = _merge(tmp_path, str(paris), str(tokyo), str(ohio), "--env", str(strict))
    assert run.returncode == 0 and checks["stream.audio_cut"]["outcome"] == "degraded"
    assert "partial outage: failed in 2 of 3 location(s) (paris, tokyo), under the quorum of 3" in \
        checks["stream.audio_cut"]["summary"]
    assert "partial outage" in (tmp_path / "merged" / "summary.md").read_text()


def test_merging_runs_of_two_envs_is_one_clear_error(tmp_path):
    for name, env in (("a.json", "production"), ("b.json", "staging")):
        (tmp_path / name).write_text(json.dumps({"schema_version": 2, "env": env, "location": name, "checks": [],
                                                 "started_at": "2026-11-29T02:00:00"}))
    run = subprocess.run([*VEZA_SYNTH, "merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out",
                          str(tmp_path / "m")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "runs of one env only, these are of production, staging" in run.stderr
    assert "Traceback" not in run.stderr
