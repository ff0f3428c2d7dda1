"""The fixtures: what the catalog's checks use, and what a team's own checks use.

Catalog checks: `veza_diagnose(symptom_id)` (with `symptom` parametrized from the catalog).
Hand-written checks: `veza_api`, `veza_chat`, `veza_stream`, `veza_pg`, `veza_redis`, and
`veza_verdict` to judge what they measured the way catalog checks are judged (thresholds,
Gatus-style wording, a confirmed failure, report rows, metrics).
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
import redis as redis_client
from websockets.asyncio.client import ClientConnection, connect

from . import diagnosis
from .catalog import Catalog, Section, Symptom, Threshold
from .catalog import load as load_catalog
from .checking import HTML_EXTRAS_KEY, current
from .enrich import Context, enrich
from .probes import Result, auth, postgres
from .profile import Profile
from .record import CheckRecord, failure_text
from .redact import Redactor
from .reports import allure as allure_report
from .reports import html as html_report
from .reports import junit as junit_report
from .run import HOLDS_TOGETHER_VAR
from .scheduling import in_holds_unit
from .target import Target
from .verdict import Verdict


@pytest.fixture(scope="session")
def veza_profile(pytestconfig: pytest.Config) -> Profile:
    """The environment profile of this run (the sandbox's unless --env says otherwise)."""
    part = current(pytestconfig)
    if part is None:
        pytest.skip("veza-synthetics is not checking an environment here: pass --env NAME|PATH "
                    "(or run tests_synthetic/, which defaults to the sandbox)")
    return part.profile


def _read_only_checks(session: pytest.Session) -> set[str]:
    """The catalog checks this session runs read-only (the ones whose first attempt may start early)."""
    return {item.callspec.params["symptom"] for item in session.items
            if "veza_diagnose" in getattr(item, "fixturenames", ()) and hasattr(item, "callspec")
            and "symptom" in item.callspec.params and item.get_closest_marker("writes") is None}


def _holds_start_at_first(config: pytest.Config) -> bool:
    """An xdist worker under -n: every holding check comes to the worker that gets the first one
    (scheduling.HoldsTogether), which then starts them all."""
    workerinput = getattr(config, "workerinput", None)
    return bool(workerinput and workerinput.get(HOLDS_TOGETHER_VAR))


@pytest.fixture(scope="session")
def veza_target(request: pytest.FixtureRequest, veza_profile: Profile) -> Iterator[Target]:
    """The platform under test, with its timeouts; every session it opens is logged out at the end.
    The checks of this run that hold on purpose begin their first attempt now, in the background (in an
    xdist worker: when the first of them comes to it)."""
    part = current(request.config)
    with Target(veza_profile, part.catalog if part is not None else None) as target:
        if not hasattr(request.config, "workerinput"):
            diagnosis.start_holds(target, _read_only_checks(request.session))
        yield target
    if part is not None:
        part.logins += target.load().logins


def report_check(request: pytest.FixtureRequest, record: CheckRecord, symptom: Symptom) -> None:
    """The record into the run's records (checking.py), the test's JUnit properties (the verdict, not the
    record), pytest-html and Allure; then the test fails on a confirmed failure (xfails when the check is
    quarantined) and is skipped when nothing could be measured or a maintenance window covers it."""
    profile = request.getfixturevalue("veza_profile")
    part = current(request.config)
    # this process's outputs (JUnit, pytest-html, Allure) mask the profile's secrets, in a worker too
    redactor = part.redactor if part is not None else profile.redactor()
    record = part.add(record) if part is not None else enrich(record, Context(profile, redactor))
    request.node.user_properties += [("symptom", record.id), ("outcome", record.outcome), ("verdict", record.summary),
                                     *((k, v) for k, v in record.measurements.items()
                                       if isinstance(v, (int, float, str)))]
    request.node.user_properties += [(f"link: {link['label']}", link["url"]) for link in record.links or ()]
    if record.flaky:  # reports/junit.py makes it the testcase's <flakyFailure>
        request.node.user_properties.append((junit_report.FLAKY_PROPERTY, record.attempts[0]["summary"]))
    request.node.stash[HTML_EXTRAS_KEY] = html_report.extras(record.to_json(), redactor)
    allure_report.attach(record.to_json(), symptom)
    if record.outcome == "failed" and record.quarantined:
        q = record.quarantined
        pytest.xfail(f"quarantined until {q['expires']} (owner {q['owner']}: {q['reason']}): {record.summary}")
    if record.outcome == "failed":
        pytest.fail(failure_text(record, redactor), pytrace=False)
    if record.outcome in ("no_data", "skipped", "maintenance"):
        pytest.skip(record.summary)


@pytest.fixture
def veza_diagnose(request: pytest.FixtureRequest, veza_target: Target) -> Callable[[str], Verdict]:
    """Run a catalog check; a confirmed failure fails the test with the whole diagnosis."""
    def run(symptom_id: str) -> Verdict:
        writes = request.node.get_closest_marker("writes") is not None
        if not writes and _holds_start_at_first(request.config) and in_holds_unit(request.node.nodeid, veza_target.catalog):
            diagnosis.start_holds(veza_target, _read_only_checks(request.session))
        record, verdict = diagnosis.diagnose(symptom_id, veza_target, writes)
        report_check(request, record, veza_target.catalog.symptoms[symptom_id])
        return verdict
    return run


# -- for hand-written checks -------------------------------------------------------------------
class VerdictJudge:
    """`veza_verdict(symptom_id, measure)`: measure into a Verdict, confirm a failure, report it.

    `measure(v, attempt)` fills the verdict (v.against, v.require, v.record); it runs again to
    confirm a failure. The symptom is a catalog id, or a team's own with `thresholds` given as
    {name: {"fail": N, "warn": N, "unit": "ms", "bad_when": "above"}}.
    """

    def __init__(self, request: pytest.FixtureRequest, profile: Profile, catalog: Catalog, redactor: Redactor):
        self.request, self.profile, self.catalog, self.redactor = request, profile, catalog, redactor
        # where the profile names a collector, each attempt's spans go with the run's (the target's client's)
        self.spans = request.getfixturevalue("veza_target").client.spans if profile.tracing.otlp_endpoint else None

    def symptom(self, symptom_id: str, thresholds: dict[str, dict[str, Any]] | None, runbook: str) -> Symptom:
        known = self.catalog.symptoms.get(symptom_id)
        if known is not None:
            return known
        if not thresholds:
            raise pytest.UsageError(f"veza_verdict: '{symptom_id}' is not in the catalog: give its thresholds")
        section = Section(key="custom", title_fr=symptom_id, title_en=symptom_id, solutions=runbook,
                          prevention="", diagnostics=(), severity="normal")
        parsed = {name: Threshold(name=name, unit=str(spec.get("unit", "")), bad_when=spec.get("bad_when", "above"),
                                  source=str(spec.get("source", "team")), warn=spec.get("warn"), fail=spec.get("fail"))
                  for name, spec in thresholds.items()}
        return Symptom(id=symptom_id, category="custom", section=section, title_fr=symptom_id, title_en=symptom_id,
                       measures=runbook, thresholds=parsed)

    def __call__(self, symptom_id: str, measure: diagnosis.Measure, *, thresholds: dict[str, dict[str, Any]] | None = None,
                 runbook: str = "") -> Verdict:
        symptom = self.symptom(symptom_id, thresholds, runbook)
        record, verdict = diagnosis.confirm(symptom, measure, self.redactor,
                                            self.profile.threshold_overrides(symptom_id), spans=self.spans)
        report_check(self.request, record, symptom)
        return verdict

    async def confirm(self, symptom_id: str, measure: Callable[[Verdict, int], Awaitable[None]], *,
                      thresholds: dict[str, dict[str, Any]] | None = None, runbook: str = "") -> Verdict:
        """The same for an `async def` measure, from an async test."""
        symptom = self.symptom(symptom_id, thresholds, runbook)
        record, verdict = await diagnosis.confirm_async(symptom, measure, self.redactor,
                                                        self.profile.threshold_overrides(symptom_id), spans=self.spans)
        report_check(self.request, record, symptom)
        return verdict


@pytest.fixture
def veza_verdict(request: pytest.FixtureRequest, veza_profile: Profile) -> VerdictJudge:
    part = current(request.config)
    if part is None:
        return VerdictJudge(request, veza_profile, load_catalog(), veza_profile.redactor())
    return VerdictJudge(request, veza_profile, part.catalog, part.redactor)


@pytest.fixture
def veza_api(veza_profile: Profile, veza_target: Target) -> Iterator[httpx.Client]:
    """An httpx client logged in as the synthetic user, with the profile's base URL, TLS and timeout;
    logged out at teardown."""
    p, transport = veza_profile, veza_target.transport
    login = auth.login(transport, p.backend.url, p.accounts.user_email, p.accounts.user_password, p.timeouts.request_s)
    if login.session is None:
        pytest.fail(f"veza_api: the synthetic user could not log in: {login.error or login.evidence}", pytrace=False)
    session = login.session
    with httpx.Client(base_url=p.backend.url, timeout=p.timeouts.request_s, verify=transport.tls(p.backend.url),
                      headers={"Authorization": f"Bearer {session.access_token}"}) as client:
        yield client
    auth.logout(transport, p.backend.url, session, p.timeouts.request_s)


@pytest_asyncio.fixture
async def veza_chat(veza_profile: Profile, veza_target: Target) -> AsyncIterator[Callable[[], Awaitable[ClientConnection]]]:
    """An async factory of chat connections, authenticated as the profile's chat expects; all closed
    at teardown. Sending a message is a write: mark such a test `writes`."""
    p, opened = veza_profile, []

    async def open_connection() -> ClientConnection:
        url = p.chat.url
        if p.chat.auth == "token":
            token = veza_target.token()
            if token is None:
                pytest.fail(f"veza_chat: no token: {veza_target.login_failure()}", pytrace=False)
            url = f"{url}{'&' if '?' in url else '?'}token={token}"
        connection = await connect(url, open_timeout=p.timeouts.ws_s, close_timeout=p.timeouts.ws_s,
                                   ssl=veza_target.transport.tls(url) if url.startswith("wss:") else None)
        opened.append(connection)
        return connection
    yield open_connection
    for connection in opened:
        await connection.close()


@pytest.fixture(scope="session")
def veza_stream(veza_target: Target) -> Result:
    """The canary, signed and downloaded once per session, with its decoded measurements
    (decoded_s, delivered_kbps, longest_gap_ms, startup_s, rebuffer_pct, ...)."""
    if not veza_target.profile.has_stream:
        pytest.skip("no stream server in this profile")
    return veza_target.stream_download(0)


@pytest.fixture
def veza_pg(veza_profile: Profile, veza_target: Target) -> Iterator[psycopg.Connection[Any]]:
    """A read-only PostgreSQL session (default_transaction_read_only, statement timeout)."""
    if not veza_profile.has_postgres:
        pytest.skip("no PostgreSQL in this profile")
    with postgres.connect(veza_target.transport, veza_profile.postgres, veza_profile.timeouts.connect_s) as connection:
        yield connection


class ReadOnlyRedis:
    """The Redis commands that only read; anything else is refused before it is sent."""
    READS = frozenset({"ping", "info", "ttl", "pttl", "exists", "get", "mget", "type", "scan", "hget", "hgetall",
                       "llen", "scard", "zcard", "dbsize", "config_get"})

    def __init__(self, client: redis_client.Redis[bytes]):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name not in self.READS:
            raise PermissionError(f"veza_redis is read-only: {name} is not one of {sorted(self.READS)}")
        return getattr(self._client, name)


@pytest.fixture
def veza_redis(veza_profile: Profile) -> Iterator[ReadOnlyRedis]:
    if not veza_profile.has_redis:
        pytest.skip("no Redis in this profile")
    timeout = veza_profile.timeouts.connect_s
    client = redis_client.Redis.from_url(veza_profile.redis.url, password=veza_profile.redis.password or None,
                                         socket_timeout=timeout, socket_connect_timeout=timeout)
    with client:
        yield ReadOnlyRedis(client)
