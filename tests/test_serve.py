"""`veza-synth serve`: the checks in rounds for Prometheus to scrape. A fault shows in /metrics within a
round, the exposition passes promtool, SIGTERM lets the round finish and stops, bad input is one error."""
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def _metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


@contextlib.contextmanager
def _serving(*args: str):
    """`veza-synth serve ARGS` on any free port: (process, base URL); killed if a test leaves it running."""
    proc = subprocess.Popen([sys.executable, "-m", "veza_synthetics", "serve", *args, "--listen", "127.0.0.1:0"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc, re.search(r"(http://\S+)/metrics", proc.stdout.readline())[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _scrape_until(url: str, holds, what: str) -> str:
    """/metrics, scraped until `holds(text)`."""
    return _until(lambda: (lambda text: text if holds(text) else None)(httpx.get(f"{url}/metrics", timeout=5).text), what)


def _until(ask, what: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = ask()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout_s:g} s: {what}")


def test_a_fault_shows_in_the_metrics_within_a_round_and_sigterm_stops_after_it(sandbox, tmp_path):
    profile = tmp_path / "serve.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n[serve]\ninterval_s = 1\n')
    with _serving("--env", str(profile), "--symptoms", "health.services", "--location", "ci-a",
                  "--history", str(tmp_path / "history")) as (proc, url):
        _until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "a first round")
        healthy = httpx.get(f"{url}/metrics", timeout=5).text
        check = {"symptom": "health.services", "variant": "read-only", "location": "ci-a"}
        assert _metric(healthy, "veza_synthetic_check_outcome", **check, outcome="passed") == 1
        assert _metric(healthy, "veza_synthetic_check_last_success_timestamp_seconds", **check) > time.time() - 60
        promtool = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=healthy,
                                  capture_output=True, text=True, timeout=30)
        assert promtool.returncode == 0, promtool.stdout + promtool.stderr
        sandbox.set_faults(["infra.redis_down"])
        try:
            failing = _scrape_until(url, lambda t: _metric(t, "veza_synthetic_check_outcome", **check, outcome="failed") == 1,
                                    "health.services failed in /metrics")
        finally:
            sandbox.set_faults([])
        assert _metric(failing, "veza_synthetic_check_outcome", **check, outcome="passed") == 0
        assert _metric(failing, "veza_synthetic_rounds_total", location="ci-a") >= 2
        _scrape_until(url, lambda t: _metric(t, "veza_synthetic_check_outcome", **check, outcome="passed") == 1,
                      "health.services passed again")
        probed = httpx.get(f"{url}/probe", params={"symptom": "health.services"}, timeout=40,
                           headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"})  # Prometheus drives the schedule
        assert probed.status_code == 200 and _metric(probed.text, "veza_synthetic_check_outcome", **check,
                                                     outcome="passed") == 1, probed.text
        unknown = httpx.get(f"{url}/probe", params={"symptom": "no.such"}, timeout=10)
        assert unknown.status_code == 400 and "unknown check(s) no.such; known: auth.http_401_403" in unknown.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    from veza_synthetics import history
    rounds = history.load(tmp_path / "history", "sandbox", "ci-a").runs  # every round joined the memory
    states = [run["checks"][0].get("trend", {}).get("state") for run in rounds]
    assert len(rounds) >= 3 and "new" in states and "recovered" in states, states


@pytest.mark.parametrize("setting,args,words", [
    ("[serve]\ninterval_s = 0\n", [], "'serve.interval_s' must be > 0"),
    ("[serve]\nlisten = \"nowhere\"\n", [], "'serve.listen' must be HOST:PORT"),
    ("", ["--symptoms", "no.such"], "unknown check(s) no.such; known: auth.http_401_403"),
])
def test_bad_input_is_one_error_naming_the_setting(sandbox, tmp_path, setting, args, words):
    profile = tmp_path / "serve.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n{setting}')
    done = subprocess.run([sys.executable, "-m", "veza_synthetics", "serve", "--env", str(profile), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_shipped_systemd_unit_verifies(tmp_path):
    """systemd-analyze verify on the shipped unit, its ExecStart pointed at this checkout's veza-synth (a
    broken unit fails the same way: the test proves it can fail)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze comes with systemd"
    shipped = (REPO / "fixtures" / "systemd" / "veza-synth-serve.service").read_text()
    here = shutil.which("veza-synth", path=str(Path(sys.executable).parent))
    assert here and "/opt/veza-synthetics/.venv/bin/veza-synth" in shipped
    for name, text, ok in (("veza-synth-serve.service", shipped, True), ("broken.service", shipped, False)):
        unit = tmp_path / name
        unit.write_text(text.replace("/opt/veza-synthetics/.venv/bin/veza-synth", here if ok else "/nowhere/veza-synth"))
        verified = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
        assert (verified.returncode == 0) == ok, verified.stdout + verified.stderr


def test_a_dead_target_never_stops_the_schedule(tmp_path):
    """Nothing listens where the profile points: each round reports the failure, and the rounds go on."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # closed again when the block ends: a refused port
    profile = tmp_path / "dead.toml"
    profile.write_text(f'name = "dead"\nkind = "sandbox"\n[backend]\nurl = "http://127.0.0.1:{dead}"\n'
                       '[timeouts]\nconnect_s = 1\nrequest_s = 1\n[serve]\ninterval_s = 0.5\n')
    with _serving("--env", str(profile), "--symptoms", "health.services", "--history", str(tmp_path / "h")) as (proc, url):
        rounds = _scrape_until(url, lambda t: (_metric(t, "veza_synthetic_rounds_total", location="local") or 0) >= 2,
                               "two rounds")
        check = {"symptom": "health.services", "variant": "read-only", "location": "local"}
        assert _metric(rounds, "veza_synthetic_check_outcome", **check, outcome="failed") == 1
        assert _metric(rounds, "veza_synthetic_check_last_success_timestamp_seconds", **check) is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
