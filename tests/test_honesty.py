"""Checks that say what they saw: no data is not a pass, sessions are always logged out, monitoring
is judged on Veza's own jobs, searches are judged on their answers."""
import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
VEZA_SYNTH = [sys.executable, "-m", "veza_synthetics"]


def _profile(sandbox, tmp_path, text: str) -> Path:
    path = tmp_path / "variant.toml"
    path.write_text(f'extends = "{sandbox.profile_path}"\n' + textwrap.dedent(text))
    return path


def _results(folder: Path) -> dict:
    return json.loads((folder / "latest" / "results.json").read_text())


def test_no_data_is_its_own_exit_code(sandbox, tmp_path):
    profile = _profile(sandbox, tmp_path, '[prometheus]\nurl = ""\n')
    args = [*VEZA_SYNTH, "run", "--env", str(profile), "-m", "health", "--reports-dir", str(tmp_path / "r")]
    run = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 3, run.stdout[-2000:]
    checks = {c["id"]: c for c in _results(tmp_path / "r")["checks"]}
    assert checks["health.monitoring"]["outcome"] == "no_data" and checks["health.services"]["outcome"] == "passed"
    assert "NO DATA   health.monitoring: not enough data: no Prometheus in this profile" in run.stdout
    ids = subprocess.run([*VEZA_SYNTH, "no-data-ids", str(tmp_path / "r" / "latest" / "results.json")],
                         capture_output=True, text=True, timeout=60).stdout.strip()
    assert ids == "health.monitoring"
    summary = (tmp_path / "r" / "latest" / "summary.md").read_text()
    assert "## Not measured" in summary and "`health.monitoring`" in summary
    allowed = subprocess.run([*args, "--allow-no-data"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert allowed.returncode == 0, allowed.stdout[-2000:]


def test_checks_without_an_environment_say_so_in_one_line(tmp_path):
    (tmp_path / "test_team.py").write_text((REPO / "tests" / "example_team_check.py").read_text())
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert "veza-synthetics: 2 checks not run: no environment selected (pass --env NAME|PATH" in run.stdout, \
        run.stdout[-2000:]


def _sessions(profile) -> int:
    client = redis.Redis.from_url(profile.redis.url, password=profile.redis.password, socket_timeout=5)
    with client:
        return sum(1 for _ in client.scan_iter("veza:session:*"))


def test_every_session_is_logged_out_when_checks_fail_or_raise(sandbox, sandbox_profile, tmp_path):
    before = _sessions(sandbox_profile)
    with sandbox.faults_on(["auth.refresh_broken"]):
        failing = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(sandbox.profile_path),
                                  "-m", "auth", "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "r1")],
                                 cwd=REPO, capture_output=True, text=True, timeout=300)
    assert failing.returncode == 1
    (tmp_path / "test_raises.py").write_text(textwrap.dedent('''
        def test_logs_in_then_raises(veza_target):
            assert veza_target.session().session is not None
            raise RuntimeError("a check that crashes after logging in")
        '''))
    raising = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_raises.py"), "--env",
                              str(sandbox.profile_path), "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "r2")],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert raising.returncode == 1 and "a check that crashes" in raising.stdout
    assert _sessions(sandbox_profile) == before


def test_monitoring_judges_veza_jobs_and_notes_the_others(sandbox, tmp_path):
    """A shared Prometheus: a down target of a job the profile does not name is a note, not a failure."""
    not_ours = _profile(sandbox, tmp_path, '[prometheus]\njobs = "veza-backend,veza-stream,node"\nrule_groups = ""\n')
    with sandbox.faults_on(["infra.target_down"]):  # the chat's /metrics stops answering (returns once scraped so)
        args = ["--symptoms", "health.monitoring", "-p", "no:cacheprovider"]
        scoped = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(not_ours), *args,
                                 "--reports-dir", str(tmp_path / "a")], cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        default = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(sandbox.profile_path),
                                  *args, "--reports-dir", str(tmp_path / "b")], cwd=REPO, capture_output=True,
                                 text=True, timeout=300)
    check = _results(tmp_path / "a")["checks"][0]
    assert scoped.returncode == 0 and any("veza-chat" in note for note in check["notes"]), check
    assert "alert rules: not measured: no rule group named (prometheus.rule_groups is empty)" in check["not_measured"]
    assert default.returncode == 1 and "veza-chat" in _results(tmp_path / "b")["checks"][0]["summary"]


def test_a_search_that_finds_nothing_is_not_a_fast_search(sandbox, tmp_path):
    profile = _profile(sandbox, tmp_path, '[backend]\nsearch_query = "zzz no such title {n}"\nsearch_min_results = 1\n')
    run = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile), "--symptoms",
                          "db.degraded_performance", "-p", "no:cacheprovider", "--reports-dir", str(tmp_path / "r")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    summary = _results(tmp_path / "r")["checks"][0]["summary"]
    assert "search 'zzz no such title 1' answered 200 with 0 results (at least 1 expected)" in summary


def _run_one(profile, symptom: str, folder: Path) -> dict:
    subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile), "--symptoms", symptom,
                    "-p", "no:cacheprovider", "--reports-dir", str(folder)], cwd=REPO, capture_output=True, text=True,
                   timeout=300)
    return _results(folder)["checks"][0]


def _measure_one(profile, symptom: str) -> dict:
    """The check's read-only record, measured in this process as a run takes it (matrix.measure)."""
    from veza_synthetics.matrix import measure
    from veza_synthetics.profile import load
    return next(r.to_json() for r in measure(load(str(profile)), [symptom]) if r.variant == "read-only")


def test_a_client_heartbeat_keeps_a_short_proxy_timeout_at_bay(sandbox, tmp_path):
    """ws.disconnects idles as the profile's client does: with no heartbeat of its own (a browser) a 1 s
    proxy timeout drops it; a client sending its application Ping every 0.5 s survives it."""
    beating = _profile(sandbox, tmp_path, "[chat]\nclient_heartbeat_s = 0.5\n")
    with sandbox.faults_on(["front.idle_timeout"]):
        browser = _measure_one(sandbox.profile_path, "ws.disconnects")
        heartbeat = _measure_one(beating, "ws.disconnects")
    # nginx's 1 s timer starts a moment before the client's idle clock: 0.9x s or 1.0x s, never the 2 s hold
    idle = re.search(r"after (\d+(?:\.\d+)?) s idle: code 1006", browser["summary"])
    assert browser["outcome"] == "failed" and idle and 0.9 <= float(idle[1]) <= 1.2, browser["summary"]
    assert heartbeat["outcome"] == "passed", heartbeat["summary"]


def test_the_sampler_backs_off_and_a_rejected_token_in_the_sample_counts(sandbox):
    with sandbox.faults_on(["front.rate_limit"]):
        throttled = _measure_one(sandbox.profile_path, "perf.error_rate")
    m = throttled["measurements"]
    # five refusals (plus what was already in flight at 2 concurrent requests), then it stopped asking; the
    # requests not sent count as refused: the platform did not serve its declared pace
    assert 5 <= m["sample.throttled"] < 5 + 2 and m["sample.abandoned"] > 0
    assert "the sampler backed off" in throttled["summary"] and "Retry-After 1 s" in throttled["summary"]
    assert throttled["outcome"] == "failed" and m["sample.throttled_pct"] >= 20
    with sandbox.faults_on(["front.instance_rejects_tokens"]):
        rejected = _measure_one(sandbox.profile_path, "auth.http_401_403")
    assert rejected["outcome"] == "failed"
    assert any("in the HTTP sample" in c["text"] and c["level"] == "failed" for c in rejected["conditions"])
    assert rejected["evidence"]["sample_token"]["status_by_instance"]["backend-2"].get("401")


def test_the_whole_run_keeps_the_declared_pace_under_a_rate_limit(sandbox, sandbox_profile):
    """Every request of a run to the API takes its turn from one pace, not only the sample's: under a front
    door allowing 1 request a second (burst 2), a run declaring 0.9 a second meets no 429 at all, the
    checks' own bursts (their `me` calls, logins, the admin call) included."""
    from veza_synthetics.matrix import measure
    polite = sandbox_profile.with_changes("sampling", max_rps=0.9, requests=4, auth_calls=2)
    with sandbox.faults_on(["front.rate_limit"]):
        records = {r.id: r for r in measure(polite, ["auth.http_401_403", "perf.error_rate"]) if r.variant == "read-only"}
    assert records["auth.http_401_403"].outcome == "passed", records["auth.http_401_403"].summary
    assert records["perf.error_rate"].measurements["sample.throttled"] == 0, records["perf.error_rate"].summary
    assert records["perf.error_rate"].outcome == "passed", records["perf.error_rate"].summary


def test_the_sample_keeps_its_pace_and_its_concurrency(sandbox_profile):
    """Requests start no faster than max_rps (the last start is at least (n - 1) / max_rps after the first,
    whatever the machine's load), on no more connections than the concurrency allows."""
    from veza_synthetics.probes import http, politeness
    from veza_synthetics.probes.transport import Transport
    way = Transport(ca_file=sandbox_profile.tls.ca_file, trusted=tuple(sandbox_profile.urls()))  # the sample's pace only
    started = time.monotonic()
    result = http.sample(way, sandbox_profile.backend.url, {"health": sandbox_profile.backend.health_path}, {},
                         politeness.Pace(requests=11, concurrency=2, max_rps=20.0), 5)
    assert time.monotonic() - started >= 10 / 20.0
    assert result.measurements["succeeded"] == 11
    assert result.evidence["phases"]["connections_opened"] <= 2
    assert result.evidence["pace"] == {"max_rps": 20.0, "concurrency": 2, "sent_with_expiring_token": 0}


def test_a_401_for_a_token_past_its_own_expiry_is_no_refused_valid_token(sandbox_profile):
    """The sample marks requests sent within a second of the token's own exp: auth.http_401_403 leaves their
    answers out (a token past its expiry is not a valid token)."""
    from veza_synthetics.client import transport
    from veza_synthetics.probes import auth, http, politeness
    way = transport(sandbox_profile)
    login = auth.login(way, sandbox_profile.backend.url, sandbox_profile.accounts.user_email,
                       sandbox_profile.accounts.user_password, 5)
    assert login.session is not None and login.session.expires_at is not None
    try:
        result = http.sample(way, sandbox_profile.backend.url, {"me": "/api/v1/auth/me"},
                             {"Authorization": f"Bearer {login.session.access_token}"},
                             politeness.Pace(requests=4, concurrency=1, max_rps=50.0), 5, token_expires_at=time.time())
    finally:
        auth.logout(way, sandbox_profile.backend.url, login.session, 5)
    me = result.evidence["per_endpoint"]["me"]
    assert me["status_counts"] == {"200": 4} and me["status_counts_token_valid"] == {}
    assert result.evidence["pace"]["sent_with_expiring_token"] == 4


def test_a_slow_platform_costs_a_few_slow_requests_not_the_whole_sample(sandbox, sandbox_profile):
    """Once an endpoint's answers over the latency fail level decide its p95, the sample stops (and says so)."""
    from veza_synthetics.client import transport
    from veza_synthetics.probes import http, politeness
    way = transport(sandbox_profile)
    with sandbox.faults_on(["perf.latency"]):
        result = http.sample(way, sandbox_profile.backend.url, {"health": sandbox_profile.backend.health_path,
                                                           "tracks": "/api/v1/tracks?limit=20"}, {},
                             politeness.Pace(requests=40, concurrency=2, max_rps=50.0, decided_above_ms=200), 5)
    assert result.measurements["requests"] < 40 and result.measurements["abandoned"] == 40 - result.measurements["requests"]
    assert "often enough to decide its p95" in result.evidence["gave_up"]
    slowest = max(stats["max_ms"] or 0 for stats in result.evidence["per_endpoint"].values())
    assert slowest > 200


def test_the_login_budget_is_never_exceeded(sandbox, sandbox_profile, tmp_path):
    """With auth.max_logins_per_run = 1 the synthetic user logs in once and the admin's part of
    auth.http_401_403 is reported as not measured, naming the setting: no second login is made."""
    budget_one = _profile(sandbox, tmp_path, "[auth]\nmax_logins_per_run = 1\n")
    before = sandbox.admin.writes()["logins"]
    check = _run_one(budget_one, "auth.http_401_403", tmp_path / "one")
    after = sandbox.admin.writes()["logins"]
    made = {email: n - before.get(email, 0) for email, n in after.items() if n != before.get(email, 0)}
    assert made == {sandbox_profile.accounts.user_email: 1}, made
    assert check["outcome"] == "passed", check["summary"]
    assert any("admin_login: not measured" in m and "auth.max_logins_per_run = 1" in m for m in check["not_measured"])
    assert _results(tmp_path / "one")["logins"] == {"made": 1, "budget": 1}


def test_one_instance_refusing_valid_tokens_is_named_not_a_lost_session(sandbox, sandbox_profile):
    """Behind the balancer, backend-2 refuses valid tokens (front.instance_rejects_tokens): a check calling
    `me` with the run's session asks again until another instance answered, and names the one that is
    wrong instead of reporting a session that nobody lost (round robin: a check whose first call lands on
    backend-2 sees it; one landing on backend-1 passes, as that session is fine)."""
    from veza_synthetics.catalog import load as load_catalog
    from veza_synthetics.checks.auth import _me_accepted
    from veza_synthetics.probes import auth
    from veza_synthetics.target import Target
    from veza_synthetics.verdict import Verdict
    base = sandbox_profile.backend.url
    with Target(sandbox_profile) as target:
        way = target.transport
        login = auth.login(way, base, sandbox_profile.accounts.user_email, sandbox_profile.accounts.user_password, 5)
        assert login.session is not None
        with sandbox.faults_on(["front.instance_rejects_tokens"]):
            verdicts = [Verdict.for_symptom(load_catalog().symptoms["auth.session_lost"]) for _ in range(4)]
            for v in verdicts:
                _me_accepted(v, "me_after_hold", target, login.session.access_token, "session gone after 2 s")
            auth.logout(way, base, login.session, 5)
    failed = [c.text for v in verdicts for c in v.conditions if c.level == "failed"]
    assert failed and all(text.startswith("backend-2 refused the token backend-1 accepted: one instance refuses "
                                          "valid tokens, the session is intact") for text in failed), failed
    assert all(v.evidence["me_after_hold_by_instance"] == {"backend-2": 401, "backend-1": 200}
               for v in verdicts if v.outcome == "failed")


def test_a_server_without_pg_stat_statements_is_judged_on_the_rest(sandbox_profile):
    """pg_stat_statements is loaded by few servers (the public Veza's configures it nowhere, D1): where a query
    on it fails, the statement figures are not measured, with the server's reason, and the rest of
    db.degraded_performance (search, long-running queries, open transactions, cache) is still judged. The
    sandbox's `postgres` database has no such extension."""
    from veza_synthetics.matrix import measure
    elsewhere = sandbox_profile.with_changes("postgres", dbname="postgres")
    [check] = [r for r in measure(elsewhere, ["db.degraded_performance"]) if r.variant == "read-only"]
    assert not check.errors and check.outcome != "failed", check.summary
    assert any(m.startswith("pg_stat_statements: not measured: query failed (SQLSTATE 42P01)") for m in check.not_measured), \
        check.not_measured
    judged = {c["text"].split(" ")[0] for c in check.conditions}
    assert {"API", "longest", "sessions"} <= judged, check.conditions


def test_the_cache_hit_ratio_is_the_platforms_tables_over_enough_blocks(sandbox_profile):
    """The ratio counts the blocks of the platform's own tables (pg_statio_user_tables), not the database's: a
    new connection's catalog loads and the suite's catalog queries are no workload of the platform's (a freshly
    restarted real Veza read 95.9 % that way, a false warning). Over fewer than 1000 blocks it is not judged,
    said so; a search sample five times larger reads enough of them to judge it."""
    from veza_synthetics.matrix import measure
    [few] = [r for r in measure(sandbox_profile, ["db.degraded_performance"]) if r.variant == "read-only"]
    assert any(re.fullmatch(r"cache hit ratio: only \d+ blocks accessed of the platform's tables during the check "
                            r"\(< 1000\), not judged", n) for n in few.notes), few.notes
    busy = sandbox_profile.with_changes("sampling", search_calls=100)
    [many] = [r for r in measure(busy, ["db.degraded_performance"]) if r.variant == "read-only"]
    [ratio] = [c for c in many.conditions if c["threshold"] == "cache_hit_pct"]
    assert re.match(r"cache hit ratio of the platform's tables during the check [\d.]+ % (>=|<) 99 %", ratio["text"]), \
        ratio  # judged: passed, or a true warning where this sandbox's tables are still cold


def test_an_outside_lock_is_named_with_its_holder_and_hides_no_other_reading(sandbox, sandbox_profile):
    """A migration left open holds ACCESS EXCLUSIVE on tracks (db.lock_held): the API's search waits behind it.
    The suite's own readings never wait on the lock (a short lock_timeout, table sizes from the catalog), so
    the long-running, open-transaction and cache figures are all still read; the longest lock wait fails the
    check and names the session holding the lock: its pid, application, state, lock mode and table."""
    from veza_synthetics.matrix import measure
    with sandbox.faults_on(["db.lock_held"]):
        [check] = [r for r in measure(sandbox_profile, ["db.degraded_performance"]) if r.variant == "read-only"]
    assert check.outcome == "failed", check.summary
    [lock] = [c for c in check.conditions if c["threshold"] == "lock_wait_s"]
    assert lock["level"] == "failed", lock
    assert re.search(r"held by pid \d+ \(sandbox-migration, idle in transaction for [\d.]+ s, holding "
                     r"AccessExclusiveLock on tracks", lock["text"]), lock["text"]
    assert [e["step"] for e in check.errors] == ["search_1"], check.errors  # the search timed out; nothing else
    judged = {c["threshold"] for c in check.conditions}
    assert {"longest_active_s", "longest_transaction_s", "idle_in_transaction"} <= judged, judged
    assert "table_sizes" in check.evidence["statements_after"], "the table sizes never wait on the lock"


def test_a_hold_outlasts_the_front_doors_read_timeout_every_time(sandbox, sandbox_profile):
    """A chat that never pings, behind a door whose read timeout equals the idle hold, was a coin flip (held
    60 s behind a 60 s door: closed once, passed its confirmation the next). The hold outlasts the declared
    timeout by a margin, so it fails every time, and the verdict names the timeout that closed it; on the
    sandbox's time scale, front.idle_timeout's 1 s door against a 1 s hold."""
    from veza_synthetics.matrix import measure
    door = sandbox_profile.with_changes("holds", ws_idle_s=1.0, front_door_read_timeout_s=1.0)
    assert door.holds.ws_hold_s == 2.0
    with sandbox.faults_on(["front.idle_timeout"]):
        checks = [r for _ in range(3) for r in measure(door, ["ws.disconnects"])]
    assert [c.outcome for c in checks] == ["failed"] * 3, [c.summary for c in checks]
    for check in checks:
        assert "the front door's read timeout (holds.front_door_read_timeout_s = 1 s)" in check.summary, check.summary
