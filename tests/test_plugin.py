"""The suite as a pytest plugin a team installs and extends: entry point, no sandbox baggage,
fixtures for hand-written checks, the three-file recipe for a new symptom, the exit status."""
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = Path(__file__).with_name("example_team_check.py")


def test_importing_the_plugin_loads_nothing_of_the_sandbox():
    trace = subprocess.run([sys.executable, "-X", "importtime", "-c", "import veza_synthetics.plugin"],
                           capture_output=True, text=True, check=True, cwd="/").stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in trace.splitlines() if "|" in line}
    assert "veza_synthetics.fixtures" in imported  # the trace is the real one
    heavy = {m for m in imported if m.split(".")[:2] == ["veza_synthetics", "sandbox"]  # its admin client is not in it
             or m.startswith(("uvicorn", "starlette", "jwt", "tomli_w"))}
    assert not heavy, heavy


def test_no_private_pytest_import_and_no_pytest_plugins_needed():
    for path in (REPO / "veza_synthetics").rglob("*.py"):
        assert "_pytest" not in path.read_text(), path
    assert "pytest_plugins" not in (REPO / "conftest.py").read_text()


def test_markers_come_from_the_catalog(tmp_path):
    from veza_synthetics.catalog import load
    listed = subprocess.run([sys.executable, "-m", "pytest", "--markers"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60).stdout
    for name in load().markers():
        assert f"@pytest.mark.{name}:" in listed, name


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`pip install .` into a fresh venv, as a team installs the suite: without the sandbox's servers. Done by
    the uv the Makefile keeps beside this venv (`uv pip install`: pip's interface, the same build backend and
    metadata) from the packages it already fetched, without compiling bytecode ahead (what the runs below
    import compiles as they do)."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([*UV_PIP, "install", "-q", "--python", str(venv / "bin" / "python"), str(REPO)],
                   check=True, timeout=600, capture_output=True)
    return venv


UV_PIP = [str(Path(sys.prefix) / "uv" / "bin" / "uv"), "pip"]  # the Makefile's installer (.venv/uv)


def test_pip_install_brings_no_sandbox_servers(installed):
    listed = subprocess.run([*UV_PIP, "list", "--python", str(installed / "bin" / "python")], capture_output=True,
                            text=True, timeout=120).stdout.lower()
    assert "veza-synthetics" in listed and "pytest-asyncio" in listed
    assert "uvicorn" not in listed and "starlette" not in listed


def _outside_run(installed, where: Path, *args, env=None):
    return subprocess.run([str(installed / "bin" / "pytest"), "-p", "no:cacheprovider", *args], cwd=where,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


def test_a_team_runs_its_own_checks_from_anywhere(installed, sandbox, tmp_path):
    """The documented example (docs/team-checks.md), in a folder of its own, against a profile given by path
    (with a space)."""
    (tmp_path / "test_team.py").write_text(EXAMPLE.read_text())
    profile = tmp_path / "my profile.toml"
    profile.write_text(sandbox.profile_path.read_text())
    run = _outside_run(installed, tmp_path, "--env", str(profile), "test_team.py",
                       "--reports-dir", str(tmp_path / "reports"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PASS      team.tracks_listing: tracks 200; tracks latency" in run.stdout
    assert "PASS      team.chat_ping: Pong" in run.stdout
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    assert {c["id"] for c in results["checks"]} == {"team.tracks_listing", "team.chat_ping"}
    # the entry point loads it; with autoloading off, -p names it
    off = _outside_run(installed, tmp_path, "-p", "veza_synthetics", "--env", str(sandbox.profile_path),
                       "test_team.py", "-k", "track_listing", "--reports-dir", str(tmp_path / "reports"),
                       env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_PLUGINS": "pytest_asyncio.plugin"})
    assert off.returncode == 0, off.stdout[-3000:] + off.stderr[-2000:]


def test_a_hand_written_failure_is_confirmed_and_reported(installed, sandbox, tmp_path):
    (tmp_path / "test_slow.py").write_text(textwrap.dedent('''
        def test_impossible(veza_api, veza_verdict):
            def measure(v, attempt):
                v.against("latency_ms", veza_api.get("/health").elapsed.total_seconds() * 1000)
            veza_verdict("team.impossible", measure, thresholds={"latency_ms": {"fail": 0, "unit": "ms"}})
        '''))
    run = _outside_run(installed, tmp_path, "--env", str(sandbox.profile_path), "test_slow.py",
                       "--reports-dir", str(tmp_path / "reports"))
    assert run.returncode == 1
    assert re.search(r"team.impossible: latency_ms [\d.]+ ms >= 0 ms", run.stdout), run.stdout[-2000:]
    record = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())["checks"][0]
    assert record["outcome"] == "failed" and len(record["attempts"]) == 2


def test_the_readme_shows_the_example():
    assert EXAMPLE.read_text().strip() in (REPO / "docs" / "team-checks.md").read_text()


def test_a_new_symptom_is_three_files(sandbox, tmp_path):
    """The documented recipe (docs/layout.md): a catalog entry (a team's catalog, here a copy) and a check module; the
    fault proving it is an existing sandbox switch named in the catalog. Nothing else changes."""
    raw = yaml.safe_load((REPO / "veza_synthetics" / "catalog.yaml").read_text())
    raw["check_modules"].append("toy_checks")
    raw["checks"].append({"id": "health.toy_latency", "section": "health", "title_fr": "Santé lente",
                          "title_en": "Slow health", "measures": "backend tracks latency",
                          "thresholds": {"latency_ms": {"fail": 300, "unit": "ms", "bad_when": "above",
                                                        "source": "toy"}}})
    raw["faults"]["perf.latency"]["must_fail"].append("health.toy_latency")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(raw, allow_unicode=True))
    (tmp_path / "toy_checks.py").write_text(textwrap.dedent('''
        from veza_synthetics.checks import check
        from veza_synthetics.probes import http


        @check("health.toy_latency")
        def toy_latency(v, target, attempt):
            result = http.fetch(target.transport, f"{target.profile.backend.url}/api/v1/tracks?limit=1",
                                target.timeout("request"))
            if v.record("tracks", result):
                v.against("latency_ms", result.measurements["latency_ms"], label="tracks latency")
        '''))
    env = {**os.environ, "VEZA_CATALOG": str(catalog), "PYTHONPATH": str(tmp_path)}

    def run():
        return subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(sandbox.profile_path),
                               "--symptoms", "health.toy_latency", "-p", "no:cacheprovider",
                               "--reports-dir", str(tmp_path / "reports")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    healthy = run()
    assert healthy.returncode == 0 and "PASS      health.toy_latency: tracks latency" in healthy.stdout, \
        healthy.stdout[-2000:]
    with sandbox.faults_on(["perf.latency"]):
        faulty = run()
    assert faulty.returncode == 1 and "FAIL      health.toy_latency: tracks latency" in faulty.stdout, \
        faulty.stdout[-2000:]
    matrix = subprocess.run([sys.executable, "-m", "veza_synthetics", "matrix"], env=env, capture_output=True,
                            text=True, timeout=60).stdout
    assert "health.toy_latency" in matrix


def test_fail_on_degraded_is_the_plugins_exit_status(sandbox, tmp_path):
    profile = tmp_path / "strict.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n'
                       '[thresholds."db.connection_timeout"]\nconnect_p95_ms = {warn = 0.001, fail = 100000}\n')
    args = [sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile), "--symptoms",
            "db.connection_timeout", "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "reports")]
    lenient = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert lenient.returncode == 0 and "DEGRADED  db.connection_timeout" in lenient.stdout, lenient.stdout[-2000:]
    strict = subprocess.run([*args, "--fail-on-degraded"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert strict.returncode == 1, strict.stdout[-2000:]
