"""Root cause first: checks behind a dead dependency are grouped under it, in every report; a check
that fails for its own reason while its dependencies are up is never grouped."""
import json
import subprocess
import sys
from pathlib import Path

from veza_synthetics.catalog import DEPENDENCIES
from veza_synthetics.catalog import load as load_catalog
from veza_synthetics.dependencies import WORDING
from veza_synthetics.sandbox.processes import free_port

REPO = Path(__file__).resolve().parents[1]


def _suite(profile: Path, reports: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    run = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile), "-p",
                          "no:cacheprovider", "-q", "--reports-dir", str(reports), *args], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    return run, json.loads((reports / "latest" / "results.json").read_text())


def test_every_dependency_has_words_and_every_check_declares_its_own():
    assert set(WORDING) == set(DEPENDENCIES)
    for sid, symptom in load_catalog().symptoms.items():
        assert set(symptom.depends_on) <= set(DEPENDENCIES), sid
        assert symptom.depends_on or sid.startswith("health."), f"{sid} declares no dependency"


def test_a_dead_backend_blocks_the_checks_behind_it(sandbox, tmp_path):
    dead = tmp_path / "dead-backend.toml"
    dead.write_text(f'extends = "{sandbox.profile_path}"\n[backend]\nurl = "https://127.0.0.1:{free_port()}"\n')
    run, results = _suite(dead, tmp_path, "-m", "not websocket")
    causes = results["root_causes"]
    assert causes[0]["dependency"] == "backend" and causes[0]["reason"].startswith("backend unreachable (unreachable:")
    blocked = set(causes[0]["checks"])
    behind = {sid for sid, s in load_catalog().symptoms.items() if "backend" in s.depends_on and not sid.startswith("ws.")}
    assert blocked == behind, blocked ^ behind
    checks = {(c["id"], c["variant"]): c for c in results["checks"]}
    assert "blocked_by" not in checks[("health.services", "read-only")]  # it reports the dependencies itself
    assert checks[("db.connection_timeout", "read-only")]["outcome"] == "passed"  # PostgreSQL is up
    assert results["dependencies"]["backend"].startswith("down:") and results["dependencies"]["postgres"] == "up"
    section = run.stdout.split("veza-synthetics ", 1)[1]
    first = next(line for line in section.splitlines()[1:] if line.strip())
    assert first.startswith("ROOT CAUSE backend unreachable") and f"{len(blocked)} check(s) blocked" in first
    assert "FAIL      perf.error_rate: blocked by backend unreachable" in run.stdout
    summary = (tmp_path / "latest" / "summary.md").read_text().splitlines()
    assert summary[2].startswith("**ROOT CAUSE backend unreachable"), summary[:4]
    assert "ROOT CAUSE backend unreachable" in (tmp_path / "latest" / "report.html").read_text()


def test_a_check_failing_for_its_own_reason_is_never_grouped(sandbox, tmp_path):
    with sandbox.faults_on(["stream.truncate"]):
        _, results = _suite(sandbox.profile_path, tmp_path / "own", "-m", "streaming")
    failed = [c for c in results["checks"] if c["outcome"] == "failed"]
    assert failed and not any(c.get("blocked_by") for c in failed) and results["root_causes"] == []
    with sandbox.faults_on(["infra.stream_down"]):
        _, results = _suite(sandbox.profile_path, tmp_path / "down", "-m", "streaming")
    assert [c["dependency"] for c in results["root_causes"]] == ["stream"]
    assert set(results["root_causes"][0]["checks"]) == {"stream.audio_cut", "stream.quality_degraded",
                                                         "stream.excessive_buffering"}
