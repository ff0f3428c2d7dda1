"""What the gate counts: a maintenance window turns checks into "maintenance" (neither pass nor fail);
a quarantined check reports its failure but does not fail the gate; an expired quarantine fails the run."""
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from veza_synthetics import profile

REPO = Path(__file__).resolve().parents[1]


def _suite(env: Path, reports: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(env), "-p", "no:cacheprovider",
                           "-q", "--reports-dir", str(reports), "--symptoms", "stream.audio_cut", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def _check(reports: Path) -> dict:
    return json.loads((reports / "latest" / "results.json").read_text())["checks"][0]


def _quarantine(tmp_path: Path, expires: dt.date) -> Path:
    path = tmp_path / "quarantine.toml"
    path.write_text(f'[[quarantine]]\ncheck = "stream.audio_cut"\nowner = "stream-team"\n'
                    f'reason = "encoder fix in review (INC-42)"\nexpires = {expires.isoformat()}\n')
    return path


def test_maintenance_and_quarantine_keep_a_known_failure_out_of_the_gate(sandbox, tmp_path):
    now = dt.datetime.now(dt.UTC)
    window = tmp_path / "in-maintenance.toml"
    window.write_text(f'extends = "{sandbox.profile_path}"\n[[maintenance]]\n'
                      f'start = {(now - dt.timedelta(hours=1)).isoformat(timespec="seconds")}\n'
                      f'end = {(now + dt.timedelta(hours=1)).isoformat(timespec="seconds")}\nreason = "stream upgrade"\n')
    quarantine = _quarantine(tmp_path, dt.date.today() + dt.timedelta(days=7))
    with sandbox.faults_on(["stream.truncate"]):
        in_window = _suite(window, tmp_path / "m")
        quarantined = _suite(sandbox.profile_path, tmp_path / "q", "--quarantine", str(quarantine))
        plain = _suite(sandbox.profile_path, tmp_path / "p")
    check = _check(tmp_path / "m")
    assert in_window.returncode == 0 and check["outcome"] == "maintenance" and check["measured_outcome"] == "failed"
    assert "maintenance window until" in check["summary"] and "stream upgrade" in check["summary"]
    assert "trend" not in check  # left out of the pass rate and the trends
    check = _check(tmp_path / "q")
    assert quarantined.returncode == 0, quarantined.stdout[-2000:]
    assert check["outcome"] == "failed" and check["quarantined"]["owner"] == "stream-team"
    assert "[quarantined until" in quarantined.stdout and "xfail" in quarantined.stdout
    assert plain.returncode == 1  # the same failure without the quarantine fails the gate


def test_an_expired_quarantine_fails_the_run_naming_it(sandbox, tmp_path):
    run = _suite(sandbox.profile_path, tmp_path, "--quarantine", str(_quarantine(tmp_path, dt.date(2026, 1, 1))))
    assert run.returncode == 4 and "Traceback" not in run.stdout + run.stderr
    assert "quarantine of stream.audio_cut (owner stream-team) expired on 2026-01-01" in run.stdout + run.stderr


def test_a_broken_maintenance_window_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[maintenance]]\nstart = "tonight"\nend = "tomorrow"\n')
    with pytest.raises(profile.SetupError, match="maintenance window 1: 'start' and 'end' must be date-times"):
        profile.load(str(bad))
