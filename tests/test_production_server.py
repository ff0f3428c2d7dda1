"""The public Veza code with its production server in front (the sandbox's production-server
variant): its health (B1), its ready route, and its rate limits (B11, B12) on the sandbox's time
scale. A healthy run meets none of them and logs in within its budget; a fourth login is locked out."""
import re

import httpx
import pytest
from test_deployed import DECLARED, run, twin

from veza_synthetics.catalog import load as load_catalog
from veza_synthetics.client import transport
from veza_synthetics.matrix import measure, measure_with_load
from veza_synthetics.sandbox.limits import RATE_LIMITED

CATALOG = load_catalog()


@pytest.fixture(scope="module")
def production():
    yield from twin("production-server")


def test_the_production_servers_routes_and_health(production):
    _, profile = production
    base, ca = profile.backend.url, transport(profile).tls(profile.backend.url)
    health = httpx.get(f"{base}/health", timeout=5, verify=ca).json()
    assert health["status"] == "healthy" and health["redis"] == "ok" and isinstance(health["uptime"], str)  # B1
    assert httpx.get(f"{base}/ready", timeout=5, verify=ca).status_code == 200
    assert httpx.get(f"{base}/api/health", timeout=5, verify=ca).status_code == 404


def test_a_healthy_run_meets_no_rate_limit_and_logs_in_within_budget(production, tmp_path):
    """The nightly's shape against B11 and B12: the suite's pace and its one login per run keep it
    under every limit (the twin counts each 429 it answers), with no false alarm."""
    proc, _ = production
    throttled = proc.admin.writes()["throttled"]
    done, results = run(proc.profile_path, tmp_path)
    assert proc.admin.writes()["throttled"] == throttled, "a healthy run met the production server's rate limits"
    assert "Traceback" not in done.stdout and "could not complete" not in done.stdout
    outcomes = {c["id"]: c["outcome"] for c in results["checks"] if c["variant"] == "read-only"}
    summaries = {c["id"]: c["summary"] for c in results["checks"] if c["variant"] == "read-only"}
    wrong = {sid: summaries[sid] for sid, (outcome, _) in DECLARED.items()
             if outcomes[sid] != outcome and not (outcome == "passed" and outcomes[sid] == "degraded")}
    assert not wrong, wrong
    assert 1 <= results["logins"]["made"] <= min(results["logins"]["budget"], 3)


def test_a_fourth_login_within_the_window_is_locked_out(production):
    """B12: 3 logins per 15 minutes per address (7.2 s on the sandbox's time scale); the fourth gets a
    429 with Retry-After and the production server's body. The address is the one the server reads,
    X-Forwarded-For's first: a runner of its own, whatever the other tests' logins."""
    proc, profile = production
    account = {"email": profile.accounts.user_email, "password": profile.accounts.user_password}
    runner = {"X-Forwarded-For": "203.0.113.4"}
    with httpx.Client(verify=transport(profile).tls(profile.backend.url), timeout=5, headers=runner) as client:
        statuses = [client.post(f"{profile.backend.url}/api/v1/auth/login", json=account) for _ in range(4)]
    assert [a.status_code for a in statuses[:3]] == [200, 200, 200] and statuses[3].status_code == 429, statuses
    assert statuses[3].json() == RATE_LIMITED and int(statuses[3].headers["retry-after"]) >= 1


def test_redis_down_is_seen_although_the_production_servers_health_says_healthy(production):
    """B1: with Redis down the production server's /health still answers 200 healthy (naming Redis's
    error in a field); health.services fails through its own Redis probe, naming it. B14: its rate-limit
    script fails in Redis before every handler, each answer half a second late, which the latency check reads."""
    proc, profile = production
    with proc.faults_on(["infra.redis_down"]):
        health = httpx.get(f"{profile.backend.url}/health", timeout=5, verify=transport(profile).tls(profile.backend.url))
        [services, slow] = measure(profile, ["health.services", "perf.high_response_time"])
    assert health.status_code == 200 and health.json()["redis"].startswith("error"), health.text
    assert health.elapsed.total_seconds() >= 0.45, health.elapsed
    assert services.outcome == "failed", services.summary
    assert [e["step"] for e in services.errors] == ["redis"], services.errors
    slowest = re.search(r"health max (\d+) ms >= 200 ms", slow.summary)
    assert slow.outcome == "failed" and slowest and int(slowest[1]) >= 450, slow.summary


def test_a_locked_out_address_is_named_as_such_and_not_hammered(production):
    """The runner's address locked out (B12's login limit, reached here on purpose): the auth checks say
    it is a rate limit with its Retry-After, never a wrong password, and the run tries one login only.
    Measured in this process, at once: the lockout lasts 7.2 s on the sandbox's time scale, less than a
    run's start under make test's load."""
    _, profile = production
    account = {"email": profile.accounts.user_email, "password": profile.accounts.user_password}
    with httpx.Client(verify=transport(profile).tls(profile.backend.url), timeout=5) as client:  # the suite's own address
        statuses = [client.post(f"{profile.backend.url}/api/v1/auth/login", json=account).status_code for _ in range(4)]
    assert 429 in statuses, statuses
    records, load = measure_with_load(profile, [sid for sid, s in CATALOG.symptoms.items() if s.category == "auth"])
    for check in records:
        assert "answered 429: Rate limit exceeded (this address is rate limited, Retry-After" in check.summary, \
            check.summary
    assert load.logins == 1

