"""`veza-synth serve`: the checks in rounds for Prometheus to scrape. A fault shows in /metrics within a
round, the exposition passes promtool, SIGTERM lets the round finish and stops, bad input is one error."""
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
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
        yield proc, re.search(r"(https?://\S+)/metrics", proc.stdout.readline())[1]
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


def test_serve_detects_a_fault_and_alertmanager_routes_the_alert_to_a_webhook(sandbox, tmp_path):
    """Read-only serve against the sandbox: a first round of every check, then health every second. Redis
    down: health.services fails two rounds in a row, the sandbox's Prometheus (the shipped serve rules)
    fires, its Alertmanager posts to this test's webhook; fault off: resolved. Over every round: zero
    writes; SIGTERM during a /probe that holds a session leaves no session open; no secret anywhere."""
    from veza_synthetics import history
    from veza_synthetics.catalog import load as load_catalog
    from veza_synthetics.profile import load
    from veza_synthetics.sandbox.alerting import WebhookReceiver
    agent = f"veza-synth-serve-test/{uuid.uuid4().hex[:8]}"  # the sandbox counts this client's writes and sessions
    profile = tmp_path / "serve.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\nallow = "readonly"\n[tracing]\nuser_agent = "{agent}"\n'
                       '[serve]\ninterval_s = 600\nintervals = {health = 1}\n'
                       '[history]\nkeep = 1000\n')  # every round of the test kept: a failed check's retries are many
    secrets = load(str(sandbox.profile_path)).secrets()
    before = sandbox.admin.writes()
    check = {"symptom": "health.services", "variant": "read-only", "location": "ci-a"}
    with _serving("--env", str(profile), "--location", "ci-a", "--history", str(tmp_path / "history")) as (proc, url), \
            WebhookReceiver() as hook:
        sandbox.admin.route_alerts(url.removeprefix("http://"), hook.url)
        _until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "a first round", timeout_s=120)
        healthy = httpx.get(f"{url}/metrics", timeout=5).text
        assert _metric(healthy, "veza_synthetic_check_outcome", **check, outcome="passed") == 1
        assert _metric(healthy, "veza_synthetic_check_last_success_timestamp_seconds", **check) > time.time() - 60
        assert _metric(healthy, "veza_synthetic_check_interval_seconds", symptom="health.services", location="ci-a") == 1
        assert _metric(healthy, "veza_synthetic_check_interval_seconds", symptom="db.constraint_errors",
                       location="ci-a") == 600
        p95 = {"symptom": "perf.high_response_time", "threshold": "p95_ms", "unit": "seconds", "location": "ci-a"}
        assert 0 < _metric(healthy, "veza_synthetic_check_measurement", **p95) < \
            _metric(healthy, "veza_synthetic_check_threshold", **p95, level="fail") == \
            load_catalog().symptoms["perf.high_response_time"].thresholds["p95_ms"].fail / 1000
        assert _metric(healthy, "veza_synthetic_logins_total", location="ci-a") >= 1
        assert _metric(healthy, "veza_synthetic_api_requests_total", location="ci-a") >= 80  # the sample among them
        assert _metric(healthy, "veza_synthetic_chat_messages_total", location="ci-a") == 0  # read-only: none sent
        promtool = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"], input=healthy,
                                  capture_output=True, text=True, timeout=30)
        assert promtool.returncode == 0, promtool.stdout + promtool.stderr
        with sandbox.faults_on(["infra.redis_down"]):
            page = hook.wait("firing", "VezaSyntheticCheckFailingForRounds", timeout_s=90, **check)
            failing = httpx.get(f"{url}/metrics", timeout=5).text
        # the page carries the diagnosis: the verdict, and links that open its /report entry and runbook
        assert page["description"].startswith("health.services: ") and "redis" in page["description"].lower(), page
        for link, place in ((page["report"], "health-services-read-only"), (page["runbook_url"],
                                                                            "health-services-read-only-runbook")):
            assert link.startswith(f"{url}/report#") and link.endswith(f"#{place}"), page
            assert f"id='{place}'" in httpx.get(link, timeout=10).text
        assert _metric(failing, "veza_synthetic_check_consecutive_failed_rounds", **check) >= 2
        hook.wait("resolved", "VezaSyntheticCheckFailingForRounds", timeout_s=90, **check)
        report = httpx.get(f"{url}/report", timeout=10)
        assert report.status_code == 200 and "health.services" in report.text and "Solutions" in report.text
        probed = httpx.get(f"{url}/probe", params={"module": "health"}, timeout=40,
                           headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"})  # Prometheus drives the schedule
        assert probed.status_code == 200 and _metric(probed.text, "veza_synthetic_check_outcome", **check,
                                                     outcome="passed") == 1, probed.text
        unknown = httpx.get(f"{url}/probe", params={"symptom": "no.such"}, timeout=10)
        assert unknown.status_code == 400 and "no.such; known: auth.http_401_403" in unknown.text
        outputs = [healthy, failing, report.text, probed.text]
        def hold_a_session() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the prober may stop before it answers
                httpx.get(f"{url}/probe", params={"module": "auth"}, timeout=120)
        holding = threading.Thread(target=hold_a_session)
        holding.start()  # auth.session_lost holds its session: SIGTERM arrives while it is open
        _until(lambda: sandbox.admin.open_sessions(agent) >= 1, "a session opened by /probe?module=auth")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        outputs += [proc.stdout.read(), proc.stderr.read()]
        holding.join(timeout=10)
    assert sandbox.admin.open_sessions(agent) == 0
    after = sandbox.admin.writes(agent)
    assert after["http"] == [] and after["sql"] == before["sql"] and after["chat"] == before["chat"], after
    leaked = [secret for secret in secrets for text in outputs if secret in text]
    assert not leaked and not any("eyJ" in text for text in outputs), "a secret in /metrics, /report or the logs"
    rounds = history.load(tmp_path / "history", "sandbox", "ci-a").runs  # every round joined the memory
    states = [c.get("trend", {}).get("state") for run in rounds for c in run["checks"] if c["id"] == "health.services"]
    assert len(rounds) >= 3 and "new" in states and "recovered" in states, states


@pytest.mark.parametrize("setting,args,words", [
    ("[serve]\ninterval_s = 0\n", [], "'serve.interval_s' must be > 0"),
    ("[serve]\nlisten = \"nowhere\"\n", [], "'serve.listen' must be HOST:PORT"),
    ("", ["--symptoms", "no.such"], "unknown check(s) no.such; known: auth.http_401_403"),
    ("[serve]\nintervals = {nope = 5}\n", [], "'serve.intervals.\"nope\"' is neither a category nor a check id"),
    ("[serve]\nintervals = {health = 0}\n", [], "'serve.intervals.\"health\"' must be seconds > 0"),
    ("[serve]\nreport = \"public\"\n", [], "'serve.report' must be one of on, loopback, off"),
    ("[serve]\nmax_logins = 0\n", [], "'serve.max_logins' must be a whole number >= 1"),
    ("[serve]\nrequest_window_s = -1\n", [], "'serve.request_window_s' must be seconds > 0"),
    ("[serve]\nexternal_url = \"synth:9464\"\n", [], "'serve.external_url' must be an http:// or https:// address"),
    ("", ["--web.config.file", "/nowhere/web.yml"], "--web.config.file /nowhere/web.yml: cannot read it"),
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


@pytest.mark.parametrize("target", ["refused", "hung"])
def test_a_dead_or_hung_target_never_stops_the_schedule(tmp_path, target):
    """Nothing listens where the profile points (refused), or a socket accepts and never answers (hung): each
    round reports the failure within its timeouts, and the rounds go on."""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if target == "hung":
        listener.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
    else:
        listener.close()  # a refused port
    profile = tmp_path / "dead.toml"
    profile.write_text(f'name = "dead"\nkind = "sandbox"\n[backend]\nurl = "http://127.0.0.1:{port}"\n'
                       '[timeouts]\nconnect_s = 1\nrequest_s = 1\n[serve]\ninterval_s = 0.5\n'
                       'intervals = {health = 0.5, performance = 0.5}\n'
                       '[sampling]\nmax_rps = 0.4\n')  # production's pace: nothing reached waits for no turn
    try:
        with _serving("--env", str(profile), "--symptoms", "health.services,perf.error_rate",
                      "--history", str(tmp_path / "h")) as (proc, url):
            rounds = _scrape_until(url, lambda t: (_metric(t, "veza_synthetic_rounds_total", location="local") or 0) >= 2,
                                   "two rounds")
            check = {"symptom": "health.services", "variant": "read-only", "location": "local"}
            assert _metric(rounds, "veza_synthetic_check_outcome", **check, outcome="failed") == 1
            assert _metric(rounds, "veza_synthetic_check_last_success_timestamp_seconds", **check) is None
            assert _metric(rounds, "veza_synthetic_round_errors_total", location="local") == 0  # the check's, not the prober's
            report = httpx.get(f"{url}/report", timeout=10).text  # root cause first, as a run's report puts it
            assert "ROOT CAUSE backend unreachable" in report and "blocked: perf.error_rate" in report, report[-3000:]
            # at production's pace a dead platform's round takes its refusals only, a hung one a few timeouts
            assert _metric(rounds, "veza_synthetic_round_duration_seconds", location="local") < (15 if target == "hung" else 5)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        listener.close()


def _schedule(**intervals: float):
    from veza_synthetics.catalog import load as load_catalog
    from veza_synthetics.serve.schedule import Schedule
    from veza_synthetics.settings import Serve
    catalog = load_catalog()
    return Schedule.of(Serve(interval_s=900, intervals=intervals), catalog.symptoms, catalog.symptoms)


def test_checks_of_commensurate_intervals_share_their_rounds():
    """Health every minute, the rest every 15: an hour is 60 rounds, 4 of them hold every check (4 logins'
    worth, not 60), and the first round holds them all."""
    schedule, now, rounds = _schedule(health=60), 0.0, []
    schedule.start(now)
    while now < 3600:
        due = schedule.due(now)
        rounds.append(due)
        schedule.ran(due, now)  # a round that takes no time
        now += schedule.wait_s(now)
    assert len(rounds) == 60 and len(rounds[0]) == len(schedule.intervals)
    assert sum("auth.jwt_expired" in due for due in rounds) == 4
    assert all(set(due) == {"health.services", "health.monitoring"} for due in rounds if "auth.jwt_expired" not in due)


def test_a_round_longer_than_an_interval_makes_the_check_due_at_once_never_a_burst():
    schedule = _schedule(health=60)
    schedule.start(0.0)
    schedule.ran(schedule.due(0.0), 200.0)  # the first round took 200 s: three health rounds missed
    assert schedule.due(200.0) == ["health.monitoring", "health.services"]
    schedule.ran(schedule.due(200.0), 201.0)
    assert schedule.due(201.0) == [] and schedule.wait_s(201.0) == 59.0  # on its cadence again: 200 + 60


TGKILL = {"x86_64": 234, "aarch64": 131}  # the syscall that hands a signal to one thread of a process


def test_a_sigterm_the_kernel_hands_another_thread_stops_serve_at_once(sandbox, tmp_path):
    """The kernel may deliver a SIGTERM to any thread of the prober (a native one too): it stops within seconds,
    sessions logged out (exit 0), not when the main thread's wait for the next round (60 s) ends."""
    import ctypes
    import os
    import platform
    with _serving("--env", str(sandbox.profile_path), "--symptoms", "health.services",
                  "--history", str(tmp_path / "h")) as (proc, url):
        _until(lambda: httpx.get(f"{url}/-/ready", timeout=5).status_code == 200, "a first round")
        others = [int(tid) for tid in os.listdir(f"/proc/{proc.pid}/task") if int(tid) != proc.pid]
        assert others, "the prober runs threads beside its main one"
        sent = time.monotonic()
        assert ctypes.CDLL(None, use_errno=True).syscall(TGKILL[platform.machine()], proc.pid, others[0],
                                                         signal.SIGTERM) == 0
        assert proc.wait(timeout=30) == 0 and time.monotonic() - sent < 20


def test_a_failed_check_runs_again_after_the_retry_interval_then_on_its_plan():
    """The page needs two failed rounds: the second comes a retry interval (30 s) after the first, not 120 s."""
    schedule = _schedule(websocket=120)
    schedule.start(0.0)
    schedule.ran(schedule.due(0.0), 10.0, failed=["ws.disconnects"])
    assert schedule.next_at["ws.disconnects"] == 40.0 and schedule.next_at["ws.message_loss"] == 120.0
    schedule.ran(["ws.disconnects"], 45.0)  # passed again: back on its own plan (40 + 120)
    assert schedule.next_at["ws.disconnects"] == 160.0


def test_a_rounds_failure_is_confirmed_by_its_retry_not_measured_twice(sandbox, tmp_path):
    """With a retry interval, a failed check is measured once in its round (the budget spent once), said so, and
    due again a retry interval later: that round confirms it, two failed rounds page."""
    from veza_synthetics.catalog import load as load_catalog
    from veza_synthetics.profile import load
    from veza_synthetics.serve.prober import Prober
    profile = tmp_path / "retry.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n[serve]\ninterval_s = 600\nretry_interval_s = 5\n')
    prober = Prober(load(str(profile)), load_catalog(), ["health.services"], "here", tmp_path / "history")
    try:
        prober.schedule.start(time.monotonic())
        with sandbox.faults_on(["infra.redis_down"]):
            failed = prober.one_round(["health.services"])
        prober.schedule.ran(["health.services"], time.monotonic(), failed)
        [record] = prober.latest.values()
        assert failed == ["health.services"] and record.outcome == "failed" and len(record.attempts) == 1, record.summary
        assert any("the next one, a retry interval away (serve.retry_interval_s), confirms it" in n for n in record.notes)
        assert 4 < prober.schedule.wait_s(time.monotonic()) <= 5
    finally:
        prober.close()


@pytest.mark.parametrize("mode,client,status", [("loopback", "127.0.0.1", 200), ("loopback", "10.1.2.3", 403),
                                                ("on", "10.1.2.3", 200), ("off", "127.0.0.1", 404)])
def test_report_can_be_turned_off_or_kept_to_loopback(tmp_path, mode, client, status):
    from veza_synthetics.catalog import load as load_catalog
    from veza_synthetics.profile import ENV_DIR, load
    from veza_synthetics.serve.prober import Prober
    from veza_synthetics.serve.web import _report_route
    profile = tmp_path / "report.toml"
    profile.write_text(f'extends = "{ENV_DIR / "sandbox.toml"}"\n[serve]\nreport = "{mode}"\n')
    prober = Prober(load(str(profile)), load_catalog(), ["health.services"], "here", tmp_path / "history")
    answer, body, _, _ = _report_route(prober, client)
    assert answer == status and (b"No round has finished yet" in body) == (status == 200), body


def _certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 signed by it, and their keys (openssl)."""
    files = {name: folder / name for name in ("ca.pem", "ca.key", "server.pem", "server.key", "server.csr", "san.ext")}
    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)
    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=prober-ca",
        "-keyout", str(files["ca.key"]), "-out", str(files["ca.pem"]))
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(files["server.key"]),
        "-out", str(files["server.csr"]))
    files["san.ext"].write_text("subjectAltName = IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", str(files["server.csr"]), "-CA", str(files["ca.pem"]), "-CAkey", str(files["ca.key"]),
        "-CAcreateserial", "-days", "2", "-extfile", str(files["san.ext"]), "-out", str(files["server.pem"]))
    return files


def test_a_web_config_file_puts_tls_and_basic_auth_before_every_route(tmp_path):
    """exporter-toolkit's --web.config.file: over TLS with the prober's CA, a scrape without credentials gets 401
    and with them 200; a plain-text password where a bcrypt hash belongs is one error that never echoes it."""
    import ssl

    import bcrypt
    files = _certificates(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-secret-1", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n"
                   f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    profile = tmp_path / "quiet.toml"  # nothing to probe: the routes are what is tested
    profile.write_text('name = "quiet"\nkind = "sandbox"\n[backend]\nurl = "http://127.0.0.1:9"\n'
                       '[timeouts]\nconnect_s = 1\nrequest_s = 1\n[serve]\ninterval_s = 60\n')
    with _serving("--env", str(profile), "--symptoms", "health.services", "--history", str(tmp_path / "h"),
                  "--web.config.file", str(web)) as (proc, url):
        assert url.startswith("https://127.0.0.1:")
        ca = ssl.create_default_context(cafile=str(files["ca.pem"]))
        for route in ("/metrics", "/probe?module=health", "/report", "/-/ready"):
            refused = httpx.get(f"{url}{route}", verify=ca, timeout=10)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic"), route
            wrong = httpx.get(f"{url}{route}", verify=ca, timeout=10, auth=("prometheus", "guess"))
            assert wrong.status_code == 401, route
        metrics = httpx.get(f"{url}/metrics", verify=ca, timeout=10, auth=("prometheus", "scrape-secret-1"))
        assert metrics.status_code == 200 and "veza_synthetic_budget_limit" in metrics.text
        with pytest.raises(httpx.ConnectError):  # the public CAs do not know the prober's own
            httpx.get(f"{url}/metrics", timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    web.write_text("basic_auth_users:\n  prometheus: scrape-secret-1\n")
    done = subprocess.run([sys.executable, "-m", "veza_synthetics", "serve", "--env", str(profile),
                           "--web.config.file", str(web)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "'basic_auth_users.prometheus' must be a bcrypt hash" in done.stderr, done.stderr
    assert "scrape-secret-1" not in done.stderr + done.stdout and "Traceback" not in done.stderr


def test_a_maintenance_window_keeps_the_page_from_the_webhook(sandbox, tmp_path):
    """Inside a planned window serve treats its records as a run does: Redis down is reported "maintenance", its
    measured failure kept beside it, no round counts as failed, and nothing reaches the webhook over twice the
    rounds a page takes outside a window (2 rounds, then a 1 s scrape and evaluation, a 1 s group wait)."""
    import datetime as dt

    from veza_synthetics.sandbox.alerting import WebhookReceiver
    now = dt.datetime.now(dt.UTC)
    profile = tmp_path / "window.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\nallow = "readonly"\n[[maintenance]]\n'
                       f'start = {(now - dt.timedelta(hours=1)).isoformat(timespec="seconds")}\n'
                       f'end = {(now + dt.timedelta(hours=1)).isoformat(timespec="seconds")}\nreason = "redis upgrade"\n'
                       '[serve]\ninterval_s = 1\nintervals = {health = 1}\n')
    check = {"symptom": "health.services", "variant": "read-only", "location": "ci-w"}
    with _serving("--env", str(profile), "--location", "ci-w", "--symptoms", "health.services",
                  "--history", str(tmp_path / "h")) as (proc, url), WebhookReceiver() as hook:
        sandbox.admin.route_alerts(url.removeprefix("http://"), hook.url)
        _until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "a first round")
        with sandbox.faults_on(["infra.redis_down"]):
            first = _scrape_until(url, lambda t: _metric(t, "veza_synthetic_check_outcome", **check,
                                                         outcome="maintenance") == 1, "a round in the window")
            rounds = _metric(first, "veza_synthetic_rounds_total", location="ci-w")
            later = _until(lambda: (lambda t: t if _metric(t, "veza_synthetic_rounds_total", location="ci-w") >= rounds + 4
                                    else None)(httpx.get(f"{url}/metrics", timeout=5).text), "four more rounds", 120)
            report = httpx.get(f"{url}/report", timeout=10).text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert _metric(later, "veza_synthetic_check_outcome", **check, outcome="maintenance") == 1
    assert _metric(later, "veza_synthetic_check_consecutive_failed_rounds", **check) == 0
    assert "maintenance window until" in report and "measured failed" in report and "redis upgrade" in report
    assert not [a for a in hook.alerts if a[1].get("symptom") == "health.services"], hook.alerts
