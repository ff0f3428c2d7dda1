"""serve left running against the production server (its B10 sessions and B12 limits on the sandbox's time
scale): one client for the prober's life, budgets no caller exceeds (rounds, /probe scraped as Prometheus
scrapes it, a restart), and a session the platform drops between rounds met as a listener meets it."""
import os
import signal
import time
import uuid

import httpx
import pytest
from test_deployed import twin
from test_serve import _metric, _scrape_until, _serving, _until

from veza_synthetics.client import transport

AUTH = {"symptom": "auth.session_lost", "variant": "read-only"}


@pytest.fixture(scope="module")
def production():
    yield from twin("production-server")


def _profile(tmp_path, proc, agent: str, serve: str) -> str:
    path = tmp_path / f"serve-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f'extends = "{proc.profile_path}"\nallow = "readonly"\n[tracing]\nuser_agent = "{agent}"\n'
                    f"[serve]\n{serve}\n")
    return str(path)


def _logins(proc, profile) -> int:
    """Login attempts the platform saw for the synthetic and admin accounts."""
    seen = proc.admin.writes()["logins"]
    return sum(seen.get(email, 0) for email in (profile.accounts.user_email, profile.accounts.admin_email))


def test_probes_scraped_as_prometheus_scrapes_stay_within_the_budgets(production, tmp_path):
    """Rounds every 10 s (21 minutes at production's pace) and /probe?module=auth scraped every 0.3 s for 20 s: the
    platform answers no 429 and sees one login per account for the prober's life (the admin's within the
    login budget, 1 per 7.2 s), every verdict is true (nothing failed on a healthy platform), and a probe the
    budget cannot afford answers from the last round."""
    proc, profile = production
    agent = f"veza-synth-budget/{uuid.uuid4().hex[:8]}"
    path = _profile(tmp_path, proc, agent, "interval_s = 10\nintervals = {health = 1, auth = 10}")
    throttled, logins = proc.admin.writes()["throttled"], _logins(proc, profile)
    statuses: list[int] = []
    with _serving("--env", path, "--location", "ci-b", "--history", str(tmp_path / "h")) as (serving, url):
        _until(lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200, "a first round", timeout_s=120)
        started = time.monotonic()
        while time.monotonic() - started < 20:
            probed = httpx.get(f"{url}/probe", params={"module": "auth"}, timeout=30,
                               headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
            statuses.append(probed.status_code)
            if probed.status_code == 200:
                assert _metric(probed.text, "veza_synthetic_check_outcome", **AUTH, location="ci-b",
                               outcome="failed") == 0, probed.text
            time.sleep(0.3)
        elapsed = time.monotonic() - started
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=120) == 0, serving.stderr.read()
    assert proc.admin.writes()["throttled"] == throttled, "the prober met the production server's rate limits"
    made = _logins(proc, profile) - logins
    assert 1 <= made <= 2, f"{made} logins in {elapsed:.0f} s"  # one per account for the prober's life
    assert _metric(metrics, "veza_synthetic_budget_spent", budget="logins", location="ci-b") <= 1
    assert _metric(metrics, "veza_synthetic_budget_limit", budget="requests", location="ci-b") == 10
    assert _metric(metrics, "veza_synthetic_budget_window_seconds", budget="requests", location="ci-b") == 0.48
    failed = [line for line in metrics.splitlines()
              if line.startswith("veza_synthetic_check_outcome{") and 'outcome="failed"' in line and line.endswith(" 1.0")]
    assert not failed, failed
    assert statuses.count(200) >= 3 and set(statuses) <= {200, 429, 503}, statuses
    assert proc.admin.open_sessions(agent) == 0  # logged out at the stop


def test_a_restart_does_not_reset_the_budget(production, tmp_path):
    """The ledger is kept beside the history: a prober started again within the login window makes no login
    (the checks that need one say so, never a failure), and says what is spent."""
    proc, profile = production
    agent = f"veza-synth-restart/{uuid.uuid4().hex[:8]}"
    path = _profile(tmp_path, proc, agent, "interval_s = 600\nlogin_window_s = 120\nmax_logins = 1")
    history = str(tmp_path / "h")
    args = ("--env", path, "--location", "ci-c", "--history", history, "--symptoms", "auth.jwt_expired")
    with _serving(*args) as (serving, url):
        first = _scrape_until(url, lambda t: (_metric(t, "veza_synthetic_rounds_total", location="ci-c") or 0) >= 1,
                              "a first round")
        assert _metric(first, "veza_synthetic_logins_total", location="ci-c") == 1
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=60) == 0
    logins = _logins(proc, profile)
    with _serving(*args) as (serving, url):
        again = _scrape_until(url, lambda t: (_metric(t, "veza_synthetic_rounds_total", location="ci-c") or 0) >= 1,
                              "a first round after the restart")
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=60) == 0
    assert _logins(proc, profile) == logins, "the restarted prober logged in over its budget"
    assert _metric(again, "veza_synthetic_budget_spent", budget="logins", location="ci-c") == 1
    assert _metric(again, "veza_synthetic_budget_remaining", budget="logins", location="ci-c") == 0
    check = {"symptom": "auth.jwt_expired", "variant": "read-only", "location": "ci-c"}
    assert _metric(again, "veza_synthetic_check_outcome", **check, outcome="no_data") == 1, again


def test_a_session_dropped_between_rounds_is_a_lost_session(production, tmp_path):
    """One login for the prober's life: another login of the account (B10 ends the earlier sessions) between
    rounds is auth.session_lost at the next round, as a listener would meet it; the next login (within the
    budget) brings it back."""
    proc, profile = production
    agent = f"veza-synth-lost/{uuid.uuid4().hex[:8]}"
    path = _profile(tmp_path, proc, agent, "interval_s = 1.5\nintervals = {auth = 1.5}")
    check = {**AUTH, "location": "ci-d"}
    with _serving("--env", path, "--location", "ci-d", "--history", str(tmp_path / "h"),
                  "--symptoms", "auth.session_lost") as (serving, url):
        _scrape_until(url, lambda t: _metric(t, "veza_synthetic_check_outcome", **check, outcome="passed") == 1,
                      "a first round that passes")
        rounds = _metric(httpx.get(f"{url}/metrics", timeout=5).text, "veza_synthetic_rounds_total", location="ci-d")
        acc = profile.accounts  # elsewhere, the same account logs in: the prober's session ends (B10)
        with httpx.Client(verify=transport(profile).tls(profile.backend.url), timeout=5,
                          headers={"X-Forwarded-For": "203.0.113.77"}) as other:
            answer = other.post(f"{profile.backend.url}/api/v1/auth/login",
                                json={"email": acc.user_email, "password": acc.user_password})
            assert answer.status_code == 200
        lost = _scrape_until(url, lambda t: _metric(t, "veza_synthetic_check_outcome", **check, outcome="failed") == 1,
                             "auth.session_lost failed")
        assert _metric(lost, "veza_synthetic_rounds_total", location="ci-d") > rounds
        report = httpx.get(f"{url}/report", timeout=10).text
        assert "session" in report and ("401" in report or "refused" in report), report[-2000:]
        _scrape_until(url, lambda t: _metric(t, "veza_synthetic_check_outcome", **check, outcome="passed") == 1,
                      "a later round with a new session")
        logins = _metric(httpx.get(f"{url}/metrics", timeout=5).text, "veza_synthetic_logins_total", location="ci-d")
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=60) == 0
    assert 2 <= logins <= 4  # the first, and one again after the refusal (within 1 per 7.2 s)



def test_serves_small_samples_are_judged_over_a_window(sandbox, sandbox_profile):
    """Within its request budget a round sends a few requests; the performance checks judge the recent rounds'
    together and say so: one request in twenty answering 500, too rare for one round's few, is seen once the
    window holds enough of them; once it is mended, the window lets the old errors go."""
    from veza_synthetics.catalog import load as load_catalog
    from veza_synthetics.client import Client
    from veza_synthetics.matrix import measure_with_load
    from veza_synthetics.probes.budget import Ledger
    from veza_synthetics.probes.window import SampleWindow
    profile = sandbox_profile.with_changes("timeouts", run_s=6.0)  # a round's deadline: its interval
    s, catalog = profile.serve, load_catalog()
    ledger = Ledger(None, (s.max_logins, s.login_window_s), (s.max_refreshes, s.refresh_window_s),
                    (s.max_requests, s.request_window_s))
    client = Client(profile, ledger, SampleWindow(6.0, profile.sampling.requests))
    try:
        rounds = [measure_with_load(profile, ["perf.error_rate"], catalog, client)[0][0] for _ in range(2)]
        window = rounds[1].evidence["sample"]["window"]
        assert all(r.outcome == "passed" for r in rounds) and window["requests"] > window["this_sample"] > 0
        assert any(n.startswith("judged over a window of recent samples (serve.window_s)") for n in rounds[1].notes)
        with sandbox.faults_on(["perf.errors"]):  # one request in twenty: the window gathers enough to see it
            deadline, failing = time.monotonic() + 30, rounds[-1]
            while failing.outcome != "failed" and time.monotonic() < deadline:
                failing = measure_with_load(profile, ["perf.error_rate"], catalog, client)[0][0]
        assert failing.outcome == "failed", failing.summary
        deadline = time.monotonic() + 30
        mended = failing
        while mended.outcome != "passed" and time.monotonic() < deadline:  # the errors leave the 6 s window
            mended = measure_with_load(profile, ["perf.error_rate"], catalog, client)[0][0]
        assert mended.outcome == "passed", mended.summary
    finally:
        client.close()


def test_a_stop_does_not_wait_for_the_budget(sandbox, tmp_path):
    """At production's pace a round can wait minutes for its request budget; SIGTERM halts the pace, the round
    in progress ends at its next request and is not reported (its "not sent" are the prober's, not the
    platform's), and the session is logged out within one budget window, well inside systemd's stop timeout."""
    from veza_synthetics import history
    agent = f"veza-synth-stop/{uuid.uuid4().hex[:8]}"
    path = _profile(tmp_path, sandbox, agent, "interval_s = 600\nmax_requests = 2\nrequest_window_s = 6")
    with _serving("--env", path, "--location", "ci-s", "--history", str(tmp_path / "h"),
                  "--symptoms", "auth.http_401_403") as (serving, url):
        _until(lambda: sandbox.admin.open_sessions(agent) >= 1, "the round's login")
        stopped = time.monotonic()
        serving.send_signal(signal.SIGTERM)
        assert serving.wait(timeout=60) == 0, serving.stderr.read()
        took = time.monotonic() - stopped
    assert took < 15, f"the stop took {took:.1f} s"  # one 6 s budget window for the logout, not the round's 10 calls
    assert sandbox.admin.open_sessions(agent) == 0
    assert history.load(tmp_path / "h", "sandbox", "ci-s").runs == []  # the cut round is not reported


def test_one_prober_at_a_time_draws_on_a_ledger(tmp_path):
    """A second serve of the same env and location would spend the budget twice: refused at its start, naming
    the ledger and the pid that holds it; free again once the first closes."""
    from veza_synthetics.errors import SetupError
    from veza_synthetics.probes.budget import Ledger
    path, limits = tmp_path / "budget-prod-eu.json", ((1, 900.0), (5, 3600.0), (10, 60.0))
    first = Ledger(path, *limits)
    with pytest.raises(SetupError, match=rf"budget-prod-eu.json: another veza-synth serve \(pid {os.getpid()}\)"):
        Ledger(path, *limits)
    first.close()
    Ledger(path, *limits).close()
