"""The deployed Veza's shape: the sandbox serving every known variant of the public code, the shipped
profile for it, and what each check says against it (passed through the variant, failed because the
variant is the symptom, or not measured with the reason)."""
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from veza_synthetics.catalog import load as load_catalog
from veza_synthetics.client import transport
from veza_synthetics.matrix import expectation, judged_in_its_sections, measure, meets, worst_by_check
from veza_synthetics.profile import ENV_DIR, SANDBOX_VARIANTS, load, unresolved
from veza_synthetics.sandbox.answers import sign_stream
from veza_synthetics.sandbox.limits import B11_LIMIT, TOO_MANY
from veza_synthetics.sandbox.process import SandboxProcess

REPO = Path(__file__).resolve().parents[1]
CATALOG = load_catalog()
# What each check must report against the healthy deployed variant, and words its verdict must hold.
DECLARED = {
    "health.services": ("passed", "chat health healthy"),      # backend at /api/health; chat's under data (C4)
    "health.monitoring": ("passed", "rule group veza_alerts loaded"),
    "auth.http_401_403": ("passed", "non-admin on /api/v1/admin/dashboard 403"),  # no /admin/stats (B7)
    "auth.jwt_expired": ("passed", "token lifetime 3600 s = expires_in 3600 s"),  # hard-coded 1 h (B8)
    "auth.session_lost": ("passed", "(expires_at bigint)"),     # PostgreSQL, epoch seconds (B9); Redis evicts (D2)
    "db.connection_timeout": ("passed", "connect p95"),
    "db.constraint_errors": ("passed", "NOT VALID constraints 0"),
    "db.degraded_performance": ("passed", "longest open transaction"),  # the stub search is not timed (B13)
    "ws.disconnects": ("passed", "s idle, Pong in"),             # /ws without a token; held for the whole hold
    "ws.message_loss": ("failed", "members do not get messages"),  # no NewMessage broadcast (C1): a true failure
    "ws.high_latency": ("no_data", "no message reached client B"),
    "stream.audio_cut": ("passed", "longest silence gap"),       # signed with SECRET_KEY, no /info (B13, S6)
    "stream.quality_degraded": ("passed", "bitrate deviation"),  # Content-Type: not judged, said so
    "stream.excessive_buffering": ("passed", "startup"),
    "perf.high_response_time": ("passed", "health p95"),
    "perf.frequent_timeouts": ("passed", "timeouts 0/80"),
    "perf.error_rate": ("passed", "error share"),
    "perf.resource_saturation": ("passed", "cpu"),
}
BASELINE_NOT_PASSING = {c for c, (outcome, _) in DECLARED.items() if outcome != "passed"}
# Every matrix fault of the sections the deployed shape changes (auth, database, chat, stream, performance)
# fails the same checks as in the contract's shape, except where the variant takes the check away:
# a fault whose checks already fail or have no data on the healthy variant (ws.drop_messages, ws.latency:
# no broadcast), and this one.
NOT_APPLICABLE = {"db.constraint_violation": "only the writes part of db.constraint_errors sees it, and the "
                                             "deployed profile is read-only",
                  "db.slow_queries": "the fault slows the search query, which the public code's stub search "
                                     "never runs (B13)",
                  "db.lock_held": "what waits behind the lock is the search, which the public code's stub search "
                                  "never runs (B13): nothing waits"}
DEPLOYED_FAULTS = sorted(f for f, row in CATALOG.faults.items()
                         if f.split(".")[0] in ("auth", "db", "ws", "stream", "perf")
                         and not set(row.must_fail) <= BASELINE_NOT_PASSING and f not in NOT_APPLICABLE)



def _ca(profile):
    """The verifying context for the twin's front door (its endpoints share one CA)."""
    return transport(profile).tls(profile.backend.url)

def twin(variant: str):
    """A sandbox of this variant and its profile, for a module's tests."""
    proc = SandboxProcess(base_profile=ENV_DIR / SANDBOX_VARIANTS[variant], variant=variant)
    proc.start()
    try:
        yield proc, load(str(proc.profile_path))
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def deployed():
    yield from twin("deployed")


def run(profile_path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, "-m", "pytest", "tests_synthetic", "--env", str(profile_path),
                           "-p", "no:cacheprovider", "--reports-dir", str(tmp_path), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    return done, json.loads((tmp_path / "latest" / "results.json").read_text())


def test_the_shipped_profile_sets_every_variant(deployed):
    _, profile = deployed
    assert profile.backend.health_path == "/api/health" and profile.chat.auth == "none"
    assert not profile.chat.broadcast and not profile.stream.content_type_required
    assert profile.auth.session_store == "postgres" and profile.auth.expires_in_s == 3600            # B8
    assert profile.chat.health_status_path == "data.status" and profile.backend.ready_path == ""     # C4, B2
    assert profile.auth.forbidden_path == "/api/v1/admin/dashboard" and profile.backend.search_path == ""  # B7, B13
    assert profile.prometheus.job_names() == {"node", "postgres", "redis"} and profile.stream.secret       # B3, S1
    assert '"${VEZA_BACKEND_URL}"' in (ENV_DIR / "veza-deployed.toml").read_text()  # credentials stay references
    production_server = unresolved("veza-production-server")  # the public code's other backend main
    assert (production_server["backend"]["health_path"], production_server["backend"]["ready_path"]) == ("/health", "/ready")
    assert production_server["auth"]["expires_in_s"] == 3600 and production_server["sampling"]["max_rps"] <= 0.5


def test_the_sandbox_serves_the_deployed_shape(deployed):
    _, profile = deployed
    base = profile.backend.url
    health = httpx.get(f"{base}/api/health", timeout=5, verify=_ca(profile), headers={"X-Request-ID": "synthetic-1"})
    assert health.status_code == 200 and "x-request-id" not in health.headers                       # B4
    assert httpx.get(f"{base}/health", timeout=5, verify=_ca(profile)).status_code == 404
    assert httpx.get(f"{base}/ready", timeout=5, verify=_ca(profile)).status_code == 404                     # B2
    assert httpx.get(f"{base}/api/v1/tracks/1/stream-url", timeout=5, verify=_ca(profile)).status_code == 404    # B13
    info = f"{profile.stream.url}/info/{profile.stream.canary}"
    for ago, status in ((100, 200), (400, 403)):  # S2: refused only past a 300 s tolerance, in plain text
        expires = int(time.time()) - ago
        signed = f"{profile.stream.url}/stream/{profile.stream.canary}?expires={expires}&sig=" \
                 f"{sign_stream(profile.stream.canary, expires, profile.stream.secret)}"
        with httpx.stream("GET", signed, timeout=5, verify=_ca(profile)) as answer:
            assert answer.status_code == status, (ago, answer.status_code)
            if status == 403:
                assert answer.read() == b"Invalid signature" and "json" not in answer.headers.get("content-type", "")
    assert httpx.get(info, timeout=5, verify=_ca(profile)).status_code == 404                           # S6
    assert httpx.get(f"{base}/api/v1/search", params={"q": "Track"}, timeout=5, verify=_ca(profile)).json()["data"] == {
        "tracks": [], "resources": [], "users": [], "listings": []}                                   # B13
    assert httpx.get(httpx.URL(profile.chat.health_url), timeout=5, verify=_ca(profile)).json()["data"]["status"] == "healthy"
    assert httpx.get(f"{base}/metrics", timeout=5, verify=_ca(profile)).status_code == 403  # inside the network only
    scraped = httpx.get(f"{profile.prometheus.url}/api/v1/query", params={"query": "count by (job) (up)"}, timeout=5).json()
    assert {r["metric"]["job"] for r in scraped["data"]["result"]} == {"node", "postgres", "redis"}  # B3, C5, S7
    assert profile.chat.url.endswith("/ws")
    import redis
    store = redis.Redis.from_url(profile.redis.url, password=profile.redis.password, socket_timeout=5)
    assert store.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}  # D2: it holds no session
    account = {"email": profile.accounts.user_email, "password": profile.accounts.user_password}
    first, second = (httpx.post(f"{base}/api/v1/auth/login", json=account, timeout=5, verify=_ca(profile)).json()["data"]
                     for _ in range(2))
    refreshed = [httpx.post(f"{base}/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]}, timeout=5,
                            verify=_ca(profile)).status_code for t in (first, second)]
    assert refreshed == [401, 200], "a login ends the account's earlier sessions (B10)"
    assert "token_type" not in second and "access_token" in second                                   # B5
    assert httpx.post(f"{base}/auth/refresh", json={"refresh_token": second["refresh_token"]}, timeout=5,
                      verify=_ca(profile)).status_code == 404                                                  # B6


def test_every_check_says_the_truth_under_the_deployed_variant(deployed, tmp_path):
    assert set(DECLARED) == set(CATALOG.symptoms), "every catalog check declares its deployed outcome"
    proc, _ = deployed
    throttled = proc.admin.writes()["throttled"]
    done, results = run(proc.profile_path, tmp_path)
    assert proc.admin.writes()["throttled"] == throttled, "the healthy run met the public code's rate limit (B11)"
    checks = {c["id"]: c for c in results["checks"] if c["variant"] == "read-only"}
    assert "Traceback" not in done.stdout and "could not complete" not in done.stdout
    for sid, (outcome, words) in DECLARED.items():
        same = meets("pass", checks[sid]) if outcome == "passed" else checks[sid]["outcome"] == outcome
        assert same, f"{sid}: {checks[sid]['summary']}"
        assert words in checks[sid]["summary"], f"{sid}: {checks[sid]['summary']}"
    held = checks["ws.disconnects"]["measurements"]["hold.held_s"]
    assert held >= load(str(proc.profile_path)).holds.ws_idle_s - 0.05, f"ws.disconnects held {held} s"  # timer grain
    quality = checks["stream.quality_degraded"]
    assert any("Content-Type not judged" in n for n in quality["not_measured"]), quality["not_measured"]
    assert any("no ready endpoint" in n for n in checks["health.services"]["not_measured"])            # B2
    cut = checks["stream.audio_cut"]
    # S6: the stream server says no length; the profile declares it (stream.canary_duration_s), as a team must
    assert any(c["text"].endswith("s track (stream.canary_duration_s)") for c in cut["conditions"]), cut["conditions"]
    assert cut["evidence"]["stream"]["canary"]["signed_by"] == "the profile's stream secret"            # B13
    assert any("no search that reads the database" in n
               for n in checks["db.degraded_performance"]["not_measured"])                            # B13
    assert not [c for c in checks["perf.high_response_time"]["conditions"] if c["text"].startswith("search")]
    assert results["logins"]["made"] <= results["logins"]["budget"]
    forbidden = checks["auth.http_401_403"]["evidence"]["forbidden"]                                  # B4
    assert forbidden["error"] is None and forbidden["reason"] == "Insufficient permissions", forbidden


def test_a_shape_setting_that_fits_nothing_is_named_not_a_crash(deployed):
    """The profile says where an answer holds a figure; a path the answer lacks is "could not evaluate",
    naming the setting and what the answer held (C4's nested chat health read at the contract's path,
    B13's stub search counted as a list)."""
    _, profile = deployed
    contract_path = profile.with_changes("chat", health_status_path="status")
    [health] = [r.to_json() for r in measure(contract_path, ["health.services"])]
    assert health["outcome"] == "failed", health["summary"]
    assert "chat.health_status_path = 'status' matches nothing in the answer (keys: data, message, success)" \
        in health["summary"]
    timed = profile.with_changes("backend", search_path="/api/v1/search")
    [search] = [r for r in measure(timed, ["db.degraded_performance"]) if r.variant == "read-only"]
    assert "backend.search_results_path = 'data' is not a list in the answer (keys: listings, resources, tracks, users)" \
        in search.summary, search.summary
    no_chat = profile.with_changes("chat", url="", health_url="")
    chat = {r.id: r for r in measure(no_chat, ["ws.disconnects", "ws.message_loss", "ws.high_latency"])}
    assert {r.outcome for r in chat.values()} == {"no_data"}, [r.summary for r in chat.values()]
    assert all("no chat server in this profile" in r.summary for r in chat.values())
    medium = profile.with_changes("stream", quality="medium")  # the server ignores it (S3): a true deviation
    [quality] = [r for r in measure(medium, ["stream.quality_degraded"]) if r.variant == "read-only"]
    assert quality.outcome == "failed" and re.search(r"3[12]\d kbps delivered, 192 kbps requested", quality.summary), \
        quality.summary
    counted = timed.with_changes("backend", search_results_path="data.tracks", search_min_results=1)
    [empty] = [r for r in measure(counted, ["db.degraded_performance"]) if r.variant == "read-only"]
    assert "answered 200 with 0 results (at least 1 expected)" in empty.summary, empty.summary


@pytest.mark.parametrize("fault", DEPLOYED_FAULTS)
def test_detection_holds_under_the_deployed_variant(deployed, fault):
    """The fault's checks fail, and the other checks of their section pass (the whole matrix, every
    check under every fault, runs against the contract's shape)."""
    proc, profile = deployed
    relevant = [c for c in judged_in_its_sections(fault) if c not in BASELINE_NOT_PASSING]
    with proc.faults_on([fault]):  # in effect when it returns, as Prometheus sees it too
        records = [r.to_json() for r in measure(profile, relevant)]  # in this process, as a run takes them
    worst = worst_by_check(records)  # the worst of a check's variants, as in the matrix
    assert set(worst) == set(relevant)
    wrong = [f"{c}: {worst[c]['summary']}" for c in relevant if not meets(expectation(fault, c), worst[c])]
    assert not wrong, f"under {fault} on the deployed variant: {wrong}"


def test_a_player_asks_for_identity_and_compressed_audio_is_decoded(deployed):
    """The public stream server gzips the MP3 whenever the client accepts gzip (S5): the probe asks for
    identity as a media player does, and a body compressed anyway is decoded, the encoding named."""
    import gzip

    from veza_synthetics.canary import Canary, signed_canary
    from veza_synthetics.probes import stream
    from veza_synthetics.sandbox.audio import DURATION_S, canary_files
    from veza_synthetics.target import Target
    _, profile = deployed
    with Target(profile) as target:
        canary = signed_canary(target.player())
    assert isinstance(canary, Canary), canary
    with httpx.stream("GET", canary.url, timeout=10, verify=_ca(profile)) as compressed:  # httpx accepts gzip by default
        assert compressed.headers.get("content-encoding") == "gzip" and "content-length" not in compressed.headers
    played = stream.download(transport(profile), canary.url, 5, 10, 60)
    assert played.encoding == "" and played.status == 200 and played.content_length == len(played.body)
    mp3 = canary_files()[(320, False)].read_bytes()
    wire = gzip.compress(mp3)
    dl = stream.Download(status=200, body=stream._decompressed(wire, "gzip"), encoding="gzip", wire_bytes=len(wire),
                         arrivals=[(0.1, len(wire) // 2), (0.2, len(wire))])
    result = stream.analyse(dl, "https://stream.example/canary", 320, DURATION_S)
    assert result.evidence["decode_error"] is None and result.evidence["content_encoding"] == "gzip"
    assert abs(result.measurements["decoded_s"] - DURATION_S) < 0.1 and result.measurements["bytes"] == len(wire)


def test_the_public_codes_rate_limit_answers_a_burst(deployed):
    """B11 on the sandbox's time scale (sandbox/limits.py): a burst far above the suite's pace is
    refused, in the public code's words and without Retry-After; the twin counts it."""
    proc, profile = deployed
    before, answers = sum(proc.admin.writes()["throttled"].values()), []
    cheap = f"{profile.backend.url}/api/v1/no-such-route"  # counted like any request, answered without work
    with httpx.Client(verify=_ca(profile), timeout=5, limits=httpx.Limits(max_keepalive_connections=16)) as client, \
            ThreadPoolExecutor(16) as pool:
        for _ in range(5):  # a loaded machine may need more than one burst to outrun 100 per window
            answers += pool.map(lambda _: client.get(cheap), range(3 * B11_LIMIT))
            refused = [a for a in answers if a.status_code == 429 and a.json() == TOO_MANY]  # not the front door's
            if refused:
                break
    assert refused and all("retry-after" not in a.headers for a in refused), sorted({a.status_code for a in answers})
    assert sum(proc.admin.writes()["throttled"].values()) - before == len(refused)
    deadline = time.monotonic() + 5  # the window slides on: the next test starts unthrottled
    while httpx.get(f"{profile.backend.url}/api/health", verify=_ca(profile), timeout=5).status_code == 429:
        assert time.monotonic() < deadline


def test_a_refused_canary_names_the_refusal(deployed):
    """The public stream_server's plain-text 403 (S2) reaches the verdict as its text: the suite's
    signature was refused, not an undecodable stream."""
    _, profile = deployed
    wrong = profile.with_changes("stream", secret="not-the-stream-secret")
    [cut] = [r.to_json() for r in measure(wrong, ["stream.audio_cut"]) if r.variant == "read-only"]
    assert cut["outcome"] == "failed", cut["summary"]
    assert "could not evaluate stream: bad response: HTTP 403: Invalid signature (signed here with stream.secret" \
        in cut["summary"], cut["summary"]


def test_a_conversation_the_chat_refuses_is_named(deployed):
    """The public chat answers Error to a conversation_id that is not a UUID (C2): the delivery check
    could not evaluate and says why, instead of waiting out its timeout for a confirmation."""
    _, profile = deployed
    named = profile.with_changes("chat", synthetic_conversation="veza-synthetics-canary")
    [loss] = [r.to_json() for r in measure(named, ["ws.message_loss"]) if r.variant == "read-only"]
    assert loss["outcome"] == "failed" and "could not evaluate delivery: the chat refused conversation " \
        "'veza-synthetics-canary': Invalid conversation_id" in loss["summary"], loss["summary"]


def test_redis_down_is_seen_although_the_dev_servers_health_says_healthy(deployed):
    """The public dev server's /api/health checks the database only (B1): with Redis down it still answers
    healthy, and health.services fails through its own Redis probe, naming it."""
    proc, profile = deployed
    with proc.faults_on(["infra.redis_down"]):
        [services] = measure(profile, ["health.services"])
    assert services.outcome == "failed", services.summary
    assert any(c["text"].startswith("backend health healthy") for c in services.conditions), services.conditions
    assert [e["step"] for e in services.errors] == ["redis"], services.errors


def _alternatives(proc):
    """Where the deployed twin serves the public code's other shapes: simple_stream_server, the HAProxy door."""
    return proc.admin.alternatives()


def _backend_chat(profile):
    """The profile's chat moved to the backend's own /ws/chat behind the front door (C6), with the settings
    that say how it answers."""
    url = profile.backend.url.replace("https://", "wss://") + "/ws/chat"
    return profile.with_changes("chat", url=url, auth="token", broadcast=True, confirmations=False, app_ping=False,
                                delivered_type="SendMessage", rooms=False)


def test_the_backends_own_chat_answers_as_the_go_code_does(deployed):
    """C6 on the wire: no token, HTTP 401 and no upgrade; then no confirmation and no Pong, and every frame,
    a Ping included, sent on as it came to every client, its sender too."""
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    from veza_synthetics.probes import auth
    _, profile = deployed
    url = _backend_chat(profile).chat.url
    acc = profile.accounts
    login = auth.login(transport(profile), profile.backend.url, acc.user_email, acc.user_password, 5)
    assert login.session is not None

    async def talk() -> tuple[int, list[str], list[str]]:
        try:
            async with connect(url, ssl=_ca(profile)):
                refused = 0
        except InvalidStatus as exc:
            refused = exc.response.status_code
        with_token = f"{url}?token={login.session.access_token}"
        async with connect(with_token, ssl=_ca(profile)) as a, connect(with_token, ssl=_ca(profile)) as b:
            await a.send(json.dumps({"type": "Ping"}))
            got_b = [await asyncio.wait_for(b.recv(), 5)]
            got_a = [await asyncio.wait_for(a.recv(), 5)]
            for ws, got in ((a, got_a), (b, got_b)):
                try:
                    got.append(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    pass
        return refused, got_a, got_b
    try:
        refused, got_a, got_b = asyncio.run(talk())
    finally:
        auth.logout(transport(profile), profile.backend.url, login.session, 5)
    assert refused == 401  # HandleWebSocket's "Token manquant", before any upgrade
    assert got_a == got_b == ['{"type": "Ping"}'], (got_a, got_b)  # no Pong, no ActionConfirmed: the frame itself


def test_the_chat_checks_read_the_backends_own_chat_through_its_settings(deployed):
    """With chat.confirmations, chat.app_ping, chat.delivered_type and chat.rooms saying how /ws/chat answers,
    the chat checks pass on it and say what they could not measure; the contract's settings there name
    the setting to change; a read-only profile sends nothing to a chat whose members are everyone."""
    import dataclasses
    proc, profile = deployed
    go_chat = _backend_chat(profile)
    before = proc.admin.writes()["chat"] or {}
    checks = {r.id: r for r in measure(go_chat, ["ws.disconnects", "ws.message_loss", "ws.high_latency"])
              if r.variant == "read-only"}
    assert {sid: r.outcome for sid, r in checks.items()} == dict.fromkeys(checks, "passed"), \
        [r.summary for r in checks.values()]
    assert "application Ping/Pong: not measured (chat.app_ping = false: this chat answers no Ping)" \
        in checks["ws.disconnects"].not_measured
    assert checks["ws.message_loss"].measurements["delivery.received"] == 50, checks["ws.message_loss"].measurements
    after = proc.admin.writes()["chat"] or {}
    assert sum(after.values()) - sum(before.values()) == 50  # one delivery run serves both checks
    contract = {r.id: r for r in measure(go_chat.with_changes("chat", confirmations=True),
                                         ["ws.disconnects", "ws.message_loss"]) if r.variant == "read-only"}
    for r in contract.values():  # the hold is a failure (no frame), the delivery could not begin (nothing sent)
        assert r.outcome == "failed" and "chat.confirmations = false for a chat that confirms nothing" in r.summary, \
            r.summary
    assert "could not evaluate delivery: no message sent" in contract["ws.message_loss"].summary
    read_only = dataclasses.replace(go_chat.with_changes("chat", synthetic_conversation="00000000-0000-4000-8000-00000000c0de"),
                                    allow="readonly")
    [loss] = [r for r in measure(read_only, ["ws.message_loss"]) if r.variant == "read-only"]
    assert loss.outcome == "skipped" and "chat.rooms = false" in loss.summary, loss.summary
    assert (proc.admin.writes()["chat"] or {}) == after


def test_the_simple_stream_server_plays_through_its_settings(deployed):
    """S8 on the wire (no signature, names with their extension, audio/mpeg, /info without a duration, no
    /health/detailed, no /metrics); the stream checks and its health pass through `stream.signed = false`,
    `stream.canary = "canary.mp3"` and `stream.health_path = "/health"`, the missing duration named; a stream
    fault still fails its check there; the stream_server's health path there is the failure it is."""
    proc, profile = deployed
    simple = _alternatives(proc)["simple_stream"]
    url, name = simple["url"], simple["canary"]
    assert name.endswith(".mp3")
    with httpx.stream("GET", f"{url}/stream/{name}", timeout=5, headers={"Accept-Encoding": "identity"}) as played:
        assert played.status_code == 200 and played.headers["content-type"] == "audio/mpeg", played.headers
    info = httpx.get(f"{url}/info/{name}", timeout=5).json()
    assert info == {"filename": name, "size": int(played.headers["content-length"]), "content_type": "audio/mpeg"}
    assert [httpx.get(f"{url}{path}", timeout=5).status_code for path in ("/health/detailed", "/metrics")] == [404, 404]
    settings = profile.with_changes("stream", url=url, signed=False, canary=name, health_path="/health",
                                    content_type_required=True, canary_duration_s=0.0)
    stream_checks = ["stream.audio_cut", "stream.quality_degraded", "stream.excessive_buffering"]
    checks = {r.id: r for r in measure(settings, ["health.services", *stream_checks])}
    assert {sid: r.outcome for sid, r in checks.items()} == dict.fromkeys(checks, "passed"), \
        [r.summary for r in checks.values()]
    cut = checks["stream.audio_cut"]
    assert cut.evidence["stream"]["canary"]["signed_by"] == "nobody (stream.signed = false)"
    assert any("neither track metadata nor the stream server's /info gives one: stream.canary_duration_s can" in n
               for n in cut.not_measured), cut.not_measured
    assert "Content-Type audio/mpeg" in checks["stream.quality_degraded"].summary
    with proc.faults_on(["stream.truncate"]):
        [truncated] = measure(settings, ["stream.audio_cut"])
    assert truncated.outcome == "failed" and "connection closed mid-body" in truncated.summary, truncated.summary
    # the canary's file cut to half on disk: served whole, only its known length shows it (the public binaries
    # say none: the team declares it)
    told = settings.with_changes("stream", canary_duration_s=profile.stream.canary_duration_s)
    with proc.faults_on(["stream.file_truncated"]):
        [cut_file] = measure(told, ["stream.audio_cut"])
    assert cut_file.outcome == "failed", cut_file.summary
    assert re.search(r"decoded [\d.]+ s of a 10 s track \(stream.canary_duration_s\)", cut_file.summary), cut_file.summary
    [detailed] = measure(settings.with_changes("stream", health_path="/health/detailed"), ["health.services"])
    assert detailed.outcome == "failed" and "stream health HTTP 404" in detailed.summary \
        and "no such endpoint: is stream.health_path right?" in detailed.summary, \
        detailed.summary


def _through_the_historical_door(profile, alternatives):
    """The profile through the historical HAProxy front door (D3): plain HTTP, the API under /api, the backend's
    own chat at /ws/chat (C6's settings), the chat server's health under /chat-api, simple_stream_server under
    /stream (S8's settings; no route reaches its health)."""
    door = alternatives["haproxy"]["url"]
    return (_backend_chat(profile).with_changes("backend", url=door)
            .with_changes("chat", url=door.replace("http://", "ws://") + "/ws/chat", health_url=f"{door}/chat-api/health")
            .with_changes("stream", url=door, signed=False, canary=alternatives["simple_stream"]["canary"],
                          health_path="", content_type_required=True))


def _dropped_by_the_door(stats_url: str) -> int:
    """HAProxy's count of requests its front end denied (`http-request reject`)."""
    import csv
    rows = csv.DictReader(httpx.get(f"{stats_url};csv", timeout=5).text.lstrip("# ").splitlines())
    return next(int(r["dreq"] or 0) for r in rows if r["pxname"] == "veza_main" and r["svname"] == "FRONTEND")


def test_the_historical_front_door_drops_an_address_over_its_rate_and_a_paced_run_meets_none(deployed):
    """D3 on the wire: its routes, and the requests of an address over 20 in its window (10 s, on the sandbox's
    time scale) get no answer at all, the connection closed (not a 429). Every check through it at the
    profile's pace says what it says through nginx, no request dropped; a dropped request reads as such."""
    import socket

    from veza_synthetics.probes import http
    proc, profile = deployed
    alternatives = _alternatives(proc)
    door, stats = alternatives["haproxy"]["url"], alternatives["haproxy"]["stats"]
    assert httpx.get(f"{door}/api/health", timeout=5).status_code == 200
    assert httpx.get(f"{door}/chat-api/health", timeout=5).json()["data"]["status"] == "healthy"  # prefix stripped
    assert httpx.get(f"{door}/health", timeout=5).status_code == 503  # nothing else is routed
    through = _through_the_historical_door(profile, alternatives)
    before = _dropped_by_the_door(stats)
    checks = {r.id: r for r in measure(through, list(CATALOG.symptoms)) if r.variant == "read-only"}
    assert _dropped_by_the_door(stats) == before, "a paced run met the door's rate rule"
    wrong = [f"{sid}: {r.summary}" for sid, r in checks.items() if not meets("pass", r.to_json())]
    assert not wrong, wrong
    assert "stream health: not measured: no health endpoint (stream.health_path is empty)" \
        in checks["health.services"].not_measured

    def burst() -> tuple[list[bytes], str | None]:
        """60 requests sent at once on 60 open connections, then one more as the probe sends it."""
        port = int(door.rsplit(":", 1)[1])
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(60)]
        for sock in sockets:
            sock.sendall(b"GET /api/health HTTP/1.1\r\nHost: veza\r\nConnection: close\r\n\r\n")
        firsts = []
        for sock in sockets:
            with sock:
                firsts.append(sock.recv(12))
        return firsts, http.fetch(transport(profile), f"{door}/api/health", 5).error
    for _ in range(5):  # the probe's request must land inside the window the burst filled
        firsts, probed = burst()
        if probed:
            break
    assert set(firsts) == {b"HTTP/1.1 200", b""}, set(firsts)  # answered, or closed without a byte: never a 429
    assert probed == "bad response: Server disconnected without sending a response.", probed
    assert _dropped_by_the_door(stats) >= before + firsts.count(b"")


def test_a_chat_that_never_pings_is_closed_by_a_shorter_proxy_read_timeout(deployed):
    """C3: the public chat server never pings. Behind a front door whose read timeout is shorter than the hold
    (front.idle_timeout's 1 s standing for a 60 s proxy), an idle client is closed: a true ws.disconnects. A
    client heartbeat under that timeout (chat.client_heartbeat_s) keeps it open."""
    proc, profile = deployed
    with proc.faults_on(["front.idle_timeout"]):
        [closed] = measure(profile, ["ws.disconnects"])
        [kept] = measure(profile.with_changes("chat", client_heartbeat_s=0.3), ["ws.disconnects"])
    assert closed.outcome == "failed" and re.search(r"closed by the server or a proxy after [\d.]+ s idle",
                                                     closed.summary), closed.summary
    assert kept.outcome == "passed", kept.summary


# What doctor cannot find read-only, and where the variant's profile is not the platform's: the chat's broadcast
# shows only by sending (a write); the sandbox's Prometheus scrapes every second where veza-deployed.toml keeps
# production's 30 s (the profile that knows nothing has the sandbox's 1 s, the true one).
NOT_DISCOVERED: set[str] = set()  # every setting the variants differ in, doctor finds


def doctored(proc: SandboxProcess, tmp_path: Path) -> tuple[Path, str]:
    """The variant's published profile as a team's first one (it extends the contract's defaults, knowing nothing
    of the variant), with the fragment doctor printed for it; and doctor's own words."""
    from veza_synthetics.doctor import examine, render
    naive = tmp_path / "naive.toml"
    naive.write_text(re.sub(r"^extends = .*$", f'extends = "{ENV_DIR / "sandbox.toml"}"',
                            proc.profile_path.read_text(), flags=re.M))
    found = examine(load(str(naive)), CATALOG)
    applied = tmp_path / "applied.toml"
    applied.write_text(f'extends = "{naive}"\n{found.fragment()}')
    return applied, render(found)


def differences(one: Path, other: Path) -> set[str]:
    from dataclasses import asdict

    from veza_synthetics.profile_model import SECTIONS
    a, b = load(str(one)), load(str(other))
    return {f"{name}.{key}" for name in SECTIONS for key, value in asdict(getattr(a, name)).items()
            if asdict(getattr(b, name))[key] != value}


def test_doctors_fragment_makes_a_profile_that_knows_nothing_of_the_variant_run_clean(deployed, tmp_path):
    proc, _ = deployed
    applied, said = doctored(proc, tmp_path)
    assert "backend.health_path = '/api/health'" in said and "chat.auth = 'none'" in said, said
    assert differences(applied, proc.profile_path) <= NOT_DISCOVERED, said
    done, results = run(applied, tmp_path / "run")
    outcomes = {c["id"]: c["outcome"] for c in results["checks"] if c["variant"] == "read-only"}
    wrong = {sid: (outcomes.get(sid), outcome) for sid, (outcome, _) in DECLARED.items() if outcomes.get(sid) != outcome}
    assert not wrong, (wrong, done.stdout[-3000:])


def test_doctor_finds_the_simple_stream_servers_settings(deployed, tmp_path):
    """A team whose stream is the public simple_stream_server (S8), with a profile that knows nothing of it:
    doctor finds no signature checked, the canary's name with its extension and the /health route, and the
    stream checks pass through the fragment it prints."""
    from veza_synthetics.doctor import examine, render
    proc, profile = deployed
    simple = _alternatives(proc)["simple_stream"]
    naive = tmp_path / "naive.toml"
    naive.write_text(re.sub(r"^extends = .*$", f'extends = "{ENV_DIR / "sandbox.toml"}"', proc.profile_path.read_text(),
                            flags=re.M).replace(profile.stream.url, simple["url"]))
    found = examine(load(str(naive)), CATALOG)
    said = render(found)
    stream = found.settings["stream"]
    assert {key: stream.get(key) for key in ("signed", "canary", "health_path")} == \
        {"signed": False, "canary": simple["canary"], "health_path": "/health"}, said
    applied = tmp_path / "applied.toml"
    applied.write_text(f'extends = "{naive}"\n{found.fragment()}')
    checks = {r.id: r for r in measure(load(str(applied)), ["stream.audio_cut", "stream.quality_degraded",
                                                            "stream.excessive_buffering"]) if r.variant == "read-only"}
    assert {sid: r.outcome for sid, r in checks.items()} == dict.fromkeys(checks, "passed"), said


def test_doctor_finds_that_the_backends_own_chat_confirms_nothing(deployed, tmp_path):
    """Pointed at the backend's own /ws/chat (C6): a token needed, and no ActionConfirmed after connecting."""
    from veza_synthetics.doctor import examine, render
    proc, profile = deployed
    naive = tmp_path / "naive.toml"
    naive.write_text(re.sub(r"^extends = .*$", f'extends = "{ENV_DIR / "sandbox.toml"}"', proc.profile_path.read_text(),
                            flags=re.M).replace(profile.chat.url, _backend_chat(profile).chat.url))
    before = proc.admin.writes()["chat"] or {}
    found = examine(load(str(naive)), CATALOG)
    chat = found.settings.get("chat", {})
    assert {key: chat.get(key) for key in ("confirmations", "app_ping", "delivered_type", "rooms")} == \
        {"confirmations": False, "app_ping": False, "delivered_type": "SendMessage", "rooms": False}, render(found)
    assert "chat.auth" not in chat and "chat.broadcast" not in chat, render(found)  # the contract's token and broadcast
    assert (proc.admin.writes()["chat"] or {}) == before  # a chat that shows every frame to everyone was sent none


def test_doctors_fragment_makes_a_profile_through_the_historical_door_run_clean(deployed, tmp_path):
    """The D3 door (HAProxy: the API under /api, the backend's own chat at /ws/chat, the chat server's health under
    /chat-api, simple_stream_server under /stream, no stream health routed), named in a profile that knows nothing
    of what answers there: doctor's fragment makes every check pass through it, none dropped by the door."""
    from veza_synthetics.doctor import examine, render
    proc, profile = deployed
    alternatives = _alternatives(proc)
    door, simple = alternatives["haproxy"]["url"], alternatives["simple_stream"]
    naive = tmp_path / "naive.toml"
    naive.write_text(re.sub(r"^extends = .*$", f'extends = "{ENV_DIR / "sandbox.toml"}"', proc.profile_path.read_text(),
                            flags=re.M))
    through = tmp_path / "door.toml"
    through.write_text(f'extends = "{naive}"\n[backend]\nurl = "{door}"\n[chat]\nurl = "{door.replace("http://", "ws://")}'
                       f'/ws/chat"\nhealth_url = "{door}/chat-api/health"\n[stream]\nurl = "{door}"\n')
    found = examine(load(str(through)), CATALOG)
    said = render(found)
    applied = tmp_path / "applied.toml"
    applied.write_text(f'extends = "{through}"\n{found.fragment()}')
    stream = load(str(applied)).stream
    assert (stream.health_path, stream.signed, stream.canary) == ("", False, simple["canary"]), said
    dropped = _dropped_by_the_door(alternatives["haproxy"]["stats"])
    checks = {r.id: r for r in measure(load(str(applied)), list(CATALOG.symptoms)) if r.variant == "read-only"}
    assert _dropped_by_the_door(alternatives["haproxy"]["stats"]) == dropped
    wrong = [f"{sid}: {r.summary}" for sid, r in checks.items() if not meets("pass", r.to_json())]
    assert not wrong, (wrong, said)
