"""The sandbox honours veza-contract.md, and a fault really changes what crosses the wire."""
import asyncio
import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from veza_synthetics.canary import signed_canary
from veza_synthetics.client import transport
from veza_synthetics.probes import certificate
from veza_synthetics.profile import ENV_DIR
from veza_synthetics.sandbox.audio import DURATION_S
from veza_synthetics.sandbox.process import SandboxProcess
from veza_synthetics.sandbox_admin import AdminClient
from veza_synthetics.target import Target


def _ca(profile):
    """The verifying context for the sandbox's front door (its endpoints share one CA)."""
    return transport(profile).tls(profile.backend.url)

@pytest.fixture(scope="module")
def target(sandbox_profile):
    t = Target(sandbox_profile)
    yield t
    t.close()


@pytest.fixture(scope="module")
def api(sandbox_profile):
    with httpx.Client(base_url=sandbox_profile.backend.url, timeout=5, verify=_ca(sandbox_profile)) as client:
        yield client


def test_backend_health_ready_and_metrics(api):
    health = api.get("/health").json()
    assert health["status"] == "healthy" and health["components"] == {"database_connected": True, "redis_available": True}
    assert api.get("/ready").json() == {"status": "ready"}
    names = {f.name for f in text_string_to_metric_families(api.get("/metrics").text)}
    assert {"http_requests", "http_request_duration_seconds", "veza_active_sessions"} <= names
    assert api.get("/health", headers={"X-Request-ID": "abc"}).headers["x-request-id"] == "abc"


def test_each_backend_instance_counts_only_its_own_requests(sandbox_profile):
    """As two processes would: Prometheus sums the job's instances, so neither may report the other's."""
    targets = httpx.get(f"{sandbox_profile.prometheus.url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    first, second = sorted(t["scrapeUrl"] for t in targets if t["labels"]["job"] == "veza-backend")

    def served(url: str) -> float:
        return sum(sample.value for family in text_string_to_metric_families(httpx.get(url, timeout=5).text)
                   for sample in family.samples if sample.name == "http_requests_total")
    before = served(first), served(second)
    for _ in range(5):
        assert httpx.get(first.removesuffix("/metrics") + "/health", timeout=5).status_code == 200
    assert (served(first) - before[0], served(second) - before[1]) == (5, 0)


def test_auth_cycle_and_status_codes(api, sandbox_profile):
    from veza_synthetics.probes import auth
    acc = sandbox_profile.accounts  # a session of the test's own: it is logged out below
    session = auth.login(transport(sandbox_profile), sandbox_profile.backend.url, acc.user_email, acc.user_password, 5).session
    headers = {"Authorization": f"Bearer {session.access_token}"}
    assert api.get("/api/v1/auth/me", headers=headers).json()["data"]["username"] == "synthetic"
    assert api.get("/api/v1/auth/me").status_code == 401
    assert api.get("/api/v1/admin/stats", headers=headers).status_code == 403
    refreshed = api.post("/api/v1/auth/refresh", json={"refresh_token": session.refresh_token})
    assert refreshed.status_code == 200 and refreshed.json()["data"]["expires_in"] == 3600
    guide_form = api.post("/auth/refresh", headers={"Authorization": f"Bearer {session.refresh_token}"})
    assert guide_form.status_code == 200
    wrong = api.post("/api/v1/auth/login", json={"email": "synthetic@veza.local", "password": "wrong"})
    assert wrong.status_code == 401 and wrong.json() == {"success": False, "error": "invalid email or password"}
    assert api.post("/api/v1/auth/logout", json={"refresh_token": session.refresh_token}).status_code == 200
    assert api.get("/api/v1/auth/me", headers=headers).json()["error"] == "session expired"


def test_playlists_conflict_and_delete(api, target):
    headers = {"Authorization": f"Bearer {target.token()}"}
    created = api.post("/api/v1/playlists", json={"name": "contract"}, headers=headers)
    assert created.status_code == 201
    assert api.post("/api/v1/playlists", json={"name": "contract"}, headers=headers).status_code == 409
    assert api.delete(f"/api/v1/playlists/{created.json()['data']['id']}", headers=headers).status_code == 204


def test_stream_signature_range_and_info(target, sandbox_profile):
    url = signed_canary(target.player()).url
    with httpx.Client(timeout=5, verify=_ca(sandbox_profile)) as client:
        full = client.get(url)
        assert full.status_code == 200 and full.headers["content-type"] == "audio/mpeg"
        assert int(full.headers["content-length"]) == len(full.content)
        part = client.get(url, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == full.content[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(full.content)}"
        assert client.get(url.replace("sig=", "sig=00")).status_code == 403
        info = client.get(f"{sandbox_profile.stream.url}/info/veza-canary").json()
        assert info["qualities"] == {"high": 320, "medium": 192, "low": 128, "mobile": 96}


def test_chat_broadcasts_between_two_clients(target, sandbox_profile):
    async def scenario():
        url = f"{sandbox_profile.chat.url}?token={target.token()}"
        async with connect(url, ssl=_ca(sandbox_profile)) as a, connect(url, ssl=_ca(sandbox_profile)) as b:
            for ws in (a, b):
                assert json.loads(await ws.recv())["action"] == "connected"
                await ws.send(json.dumps({"type": "JoinConversation", "conversation_id": "c1"}))
                assert json.loads(await ws.recv())["action"] == "joined_conversation"
            await a.send(json.dumps({"type": "SendMessage", "conversation_id": "c1", "content": "hi", "client_msg_id": "m1"}))
            got = json.loads(await asyncio.wait_for(b.recv(), 3))
            assert got["type"] == "NewMessage" and got["client_msg_id"] == "m1"
            await a.send("not json")
            assert json.loads(await asyncio.wait_for(a.recv(), 3))["type"] in ("ActionConfirmed", "NewMessage", "Error")
    asyncio.run(scenario())


def test_chat_refuses_a_missing_token(sandbox_profile):
    with httpx.Client(timeout=3, verify=_ca(sandbox_profile)) as client:
        assert client.get(sandbox_profile.chat.url.replace("wss://", "https://")).status_code == 401


@pytest.mark.parametrize("fault,effect", [
    ("perf.latency", "slow"), ("perf.errors", "errors"), ("stream.throttle", "throttled"),
])
def test_fault_changes_the_wire_and_switching_off_restores_it(sandbox, sandbox_profile, target, fault, effect):
    base = sandbox_profile.backend.url
    ca = _ca(sandbox_profile)

    def observe():
        if effect == "slow":
            started = time.perf_counter()
            httpx.get(f"{base}/api/v1/tracks?limit=1", timeout=5, verify=ca)
            return time.perf_counter() - started >= 0.4
        if effect == "errors":
            return any(httpx.get(f"{base}/api/v1/tracks?limit=1", timeout=5, verify=ca).status_code == 500 for _ in range(40))
        url = signed_canary(target.player()).url
        started, received = time.perf_counter(), 0
        with httpx.stream("GET", url, timeout=60, verify=ca) as response:
            for chunk in response.iter_raw():
                received += len(chunk)
                if received >= 5 * 192_000 // 8:  # the first 5 s of the track tell the pace
                    break
        return received * 8 / 192_000 / (time.perf_counter() - started) < 1.0  # media s per wall s

    with sandbox.faults_on([fault]):
        assert observe(), f"{fault} did not change the wire"
    assert not observe(), f"switching {fault} off did not restore the healthy behaviour"


def test_unknown_fault_is_refused_by_the_admin_api(sandbox):
    with pytest.raises(Exception, match="unknown fault id"):
        sandbox.admin.set_faults(["no.such_fault"])


def test_stop_leaves_nothing_behind_and_two_run_side_by_side(sandbox_profile):
    second = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml")
    second.start()
    from veza_synthetics.profile import load
    other = load(str(second.profile_path))
    assert other.backend.url != sandbox_profile.backend.url
    ports = [int(other.backend.url.rsplit(":", 1)[1]), other.postgres.port,
             int(other.redis.url.rsplit(":", 1)[1].split("/")[0]), int(other.prometheus.url.rsplit(":", 1)[1])]
    workdir = second.dir
    second.stop()
    assert second.proc.poll() is not None and not workdir.exists()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_missing_binary_is_one_clear_error(tmp_path):
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "veza_synthetics", "sandbox", "up"], capture_output=True, text=True,
                         timeout=120, env={"PATH": str(tmp_path), "HOME": str(tmp_path)})
    assert run.returncode == 2
    assert "'redis-server' not found" in run.stderr and "make setup" in run.stderr
    assert "Traceback" not in run.stderr


# -- the front door: nginx with TLS, two backend instances, WebSocket proxying, a rate limit -----------
def test_the_front_door_verifies_with_the_sandbox_ca_only(sandbox_profile):
    assert sandbox_profile.backend.url.startswith("https://") and sandbox_profile.chat.url.startswith("wss://")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sandbox_profile.backend.url}/health", timeout=5)  # public CAs only: refused
    seen = {httpx.get(f"{sandbox_profile.backend.url}/health", timeout=5, verify=_ca(sandbox_profile)).headers["x-veza-instance"]
            for _ in range(6)}
    assert seen == {"backend-1", "backend-2"}  # load balanced over both instances
    days = certificate.days_left(transport(sandbox_profile), sandbox_profile.backend.url, 5).measurements["days_left"]
    assert 80 < days <= 90


def _front_effect(sandbox_profile, target, effect):
    base = sandbox_profile.backend.url
    ca = _ca(sandbox_profile)
    if effect == "instance_500":
        answers = [httpx.get(f"{base}/api/v1/tracks?limit=1", timeout=5, verify=ca) for _ in range(10)]
        failing = {a.headers.get("x-veza-instance") for a in answers if a.status_code == 500}
        return failing == {"backend-2"} and any(a.status_code == 200 for a in answers)
    if effect == "instance_401":
        headers = {"Authorization": f"Bearer {target.token()}"}
        answers = [httpx.get(f"{base}/api/v1/auth/me", headers=headers, timeout=5, verify=ca) for _ in range(10)]
        return {a.status_code for a in answers} == {200, 401}
    if effect == "idle_close":
        async def idle():
            async with connect(f"{sandbox_profile.chat.url}?token={target.token()}", ssl=ca, ping_interval=None) as ws:
                started = time.monotonic()
                await asyncio.wait_for(ws.wait_closed(), 5)
                return time.monotonic() - started, ws.close_code
        try:
            closed_after, code = asyncio.run(idle())
        except TimeoutError:
            return False
        return closed_after < 3 and code == 1006
    if effect == "throttled":
        answers = [httpx.get(f"{base}/health", timeout=5, verify=ca) for _ in range(30)]
        limited = [a for a in answers if a.status_code == 429]
        return bool(limited) and limited[0].headers["retry-after"] == "1" and limited[0].json()["error"] == "rate limited"
    return certificate.days_left(transport(sandbox_profile), base, 5).measurements["days_left"] < 6  # expiring


@pytest.mark.parametrize("fault,effect", [
    ("front.instance_errors", "instance_500"), ("front.instance_rejects_tokens", "instance_401"),
    ("front.idle_timeout", "idle_close"), ("front.rate_limit", "throttled"), ("front.cert_expiring", "expiring"),
])
def test_front_door_faults_change_the_wire(sandbox, sandbox_profile, target, fault, effect):
    assert not _front_effect(sandbox_profile, target, effect), f"{effect} without {fault}"
    with sandbox.faults_on([fault]):
        assert _front_effect(sandbox_profile, target, effect), f"{fault} did not change the wire"
    assert not _front_effect(sandbox_profile, target, effect), f"{fault} switched off, {effect} stayed"


def test_a_profile_with_the_stream_secret_signs_locally(sandbox, sandbox_profile, tmp_path):
    """Where a team has the stream secret, the canary is signed here; production gives none and the
    backend signs it (the sandbox's own profile holds no secret)."""
    assert not sandbox_profile.stream.secret
    backend_signed = signed_canary(Target(sandbox_profile).player())
    assert backend_signed.signed_by == "the backend" and backend_signed.name == "veza-canary"
    assert backend_signed.duration_s == DURATION_S
    secret = AdminClient(sandbox_profile.sandbox.admin_url).stream_secret()
    profile = tmp_path / "with-secret.toml"
    profile.write_text(f'extends = "{sandbox.profile_path}"\n[stream]\nsecret = "{secret["secret"]}"\n')
    from veza_synthetics.profile import load
    target = Target(load(str(profile)))
    local = signed_canary(target.player())
    assert local.signed_by == "the profile's stream secret" and local.duration_s == DURATION_S
    result = target.stream_download(1)
    assert result.error is None and result.measurements["decoded_s"] == pytest.approx(DURATION_S, abs=0.05)


def test_the_canary_is_one_track_among_distinctly_named_ones(sandbox_profile, target):
    """Seeded tracks have names of their own: metadata and audio of different tracks would not match."""
    token = target.token()
    with httpx.Client(base_url=sandbox_profile.backend.url, timeout=5, verify=_ca(sandbox_profile),
                      headers={"Authorization": f"Bearer {token}"}) as api:
        names = {t["stream_name"] for t in api.get("/api/v1/tracks", params={"limit": 50}).json()["data"]}
        assert len(names) == 50 and "veza-canary" not in names
        other = api.get("/api/v1/tracks/1/stream-url").json()["data"]["url"]
    assert httpx.get(other, timeout=5, verify=_ca(sandbox_profile)).status_code == 404  # only the canary has audio


def test_chat_messages_persist_and_the_recorder_sees_them(sandbox_profile, target):
    before = httpx.get(f"{sandbox_profile.sandbox.admin_url}/writes", timeout=5).json()["chat"]
    result = target.chat_delivery(7)
    assert result.measurements["received"] == result.measurements["sent"]
    after = httpx.get(f"{sandbox_profile.sandbox.admin_url}/writes", timeout=5).json()["chat"]
    grown = {c: n - before.get(c, 0) for c, n in after.items() if n != before.get(c, 0)}
    assert list(grown.values()) == [sandbox_profile.sampling.chat_messages]


def test_the_suite_connects_as_pg_monitor_never_a_superuser(sandbox, sandbox_profile, tmp_path):
    """As production grants it: a pg_monitor role with a connection limit. Under pool exhaustion it is
    refused (no superuser-reserved slot), and db.connection_timeout fails with that refusal."""
    from veza_synthetics.probes import postgres
    way = transport(sandbox_profile)
    with postgres.connect(way, sandbox_profile.postgres, 5) as conn:
        role = postgres.rows(conn, "SELECT rolsuper, rolconnlimit, pg_has_role(current_user, 'pg_monitor', 'member') "
                                   "AS monitor FROM pg_roles WHERE rolname = current_user")[0]
    assert not role["rolsuper"] and role["monitor"] and role["rolconnlimit"] > 0
    for path in ENV_DIR.glob("*.toml"):
        assert 'user = "postgres"' not in path.read_text(), path.name
    healthy = postgres.connect_times(way, sandbox_profile.postgres, 3, 5, queries={"one": "SELECT 1 AS one"})
    assert healthy.measurements["connect_attempts"] == 3 and healthy.inspection is not None
    assert healthy.inspection.evidence == {"one": [{"one": 1}]}  # on the first connect, no fourth one
    leaving = postgres.connect(way, sandbox_profile.postgres, 5)  # a client connected when the leak began
    with sandbox.faults_on(["db.pool_exhausted"]):
        leaving.close()  # its slot is taken back: the pool stays exhausted, as a leak keeps it
        deadline, refused = time.monotonic() + 5, 0
        while refused < 2:  # twice in a row, 0.3 s apart: a backend that exits late frees its slot late
            assert time.monotonic() < deadline, "a freed slot stayed free under db.pool_exhausted"
            failed = postgres.connect_times(way, sandbox_profile.postgres, 1, 5).measurements["connect_failures"]
            refused = refused + 1 if failed else 0
            time.sleep(0.3)
        result = postgres.connect_times(way, sandbox_profile.postgres, 2, 5, queries={"one": "SELECT 1 AS one"})
    assert result.measurements["connect_failures"] == 2
    assert "remaining connection slots are reserved" in result.evidence["connect_errors"][0]
    assert result.inspection is not None and result.inspection.error.startswith("no connect succeeded: ")


# -- the exporters production runs ------------------------------------------------------------------
EXPORTER_BUILDS = {"node": "node_exporter_build_info", "postgres": "postgres_exporter_build_info",
                   "redis": "redis_exporter_build_info"}


def _query(profile, expr: str) -> list[dict]:
    return httpx.get(f"{profile.prometheus.url}/api/v1/query", params={"query": expr}, timeout=5).json()["data"]["result"]


def test_node_postgres_and_redis_figures_come_from_the_real_exporters(sandbox_profile):
    """Prometheus scrapes Debian's node_exporter, postgres_exporter and redis_exporter (their own build
    info says so), the postgres one with its own pg_monitor role and the shipped custom queries."""
    for job, build in EXPORTER_BUILDS.items():
        assert _query(sandbox_profile, f'{build}{{job="{job}"}}'), f"{job}: no {build}"
    assert _query(sandbox_profile, 'pg_up{job="postgres"} == 1') and _query(sandbox_profile, 'redis_up{job="redis"} == 1')
    assert _query(sandbox_profile, 'veza_constraints_not_valid{job="postgres"}')
    mounts = {r["metric"]["mountpoint"] for r in _query(sandbox_profile, 'node_filesystem_size_bytes{job="node"}')}
    assert {m.rsplit("/", 1)[1] for m in mounts} == {"data", "logs"}, mounts


def test_a_full_disk_is_a_real_file_on_the_data_volume(sandbox, sandbox_profile):
    """perf.disk_full writes a file that fills the data volume; node_exporter's statfs sees it, the
    other volume is untouched, and switching off removes the file."""
    data = next(r["metric"]["mountpoint"] for r in _query(sandbox_profile, 'node_filesystem_size_bytes{job="node"}')
                if r["metric"]["mountpoint"].endswith("/data"))
    with sandbox.faults_on(["perf.disk_full"]):
        disk = os.statvfs(data)
        used = 1 - disk.f_bavail / disk.f_blocks
        assert used >= 0.94 and os.path.getsize(f"{data}/filler") > 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = {r["metric"]["mountpoint"].rsplit("/", 1)[1]: float(r["value"][1]) for r in _query(
                sandbox_profile, '100 * (1 - node_filesystem_avail_bytes{job="node"} / node_filesystem_size_bytes{job="node"})')}
            if seen.get("data", 0) >= 94:
                break
            time.sleep(0.5)
        assert seen["data"] >= 94 and seen["logs"] < 50, seen
    assert not os.path.exists(f"{data}/filler")


# -- nothing left behind ------------------------------------------------------------------------------
OWNER = """
import sys, time
from veza_synthetics.profile import ENV_DIR
from veza_synthetics.sandbox.process import SandboxProcess
sandbox = SandboxProcess(base_profile=ENV_DIR / "sandbox.toml", wait_prometheus=False)
sandbox.start()
print(sandbox.proc.pid, flush=True)
time.sleep(600)
"""
SERVERS = {"postgres", "redis-server", "prometheus", "nginx", "prometheus-node", "prometheus-post", "prometheus-redi",
           "prometheus-aler"}


def _alive(pid: int, comm: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z" and stat.split("(", 1)[1].rsplit(")", 1)[0] == comm


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


@pytest.mark.parametrize("killed", ["owner", "sandbox"])
def test_a_sigkilled_parent_leaves_no_server_running(killed):
    """The process that started the sandbox (a CI job killed on timeout), or the sandbox process itself,
    dies by SIGKILL: every server of the stack ends with it, PostgreSQL's detached postmaster included, and
    the folder holding their data (PostgreSQL's ~70 MB) is removed."""
    import subprocess
    import sys

    from veza_synthetics.sandbox.guard import OWNER_DIR_VAR, WORKDIR_VAR, descendants
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        guard = int(owner.stdout.readline())
        tree = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid in descendants(guard)
                if Path(f"/proc/{pid}/comm").exists()}
        assert SERVERS <= set(tree.values()), tree
        sandbox_up = next(pid for pid in descendants(guard) if _parent(pid) == guard and "sandbox" in _cmdline(pid))
        environ = dict(v.split("=", 1) for v in Path(f"/proc/{sandbox_up}/environ").read_text().split("\0") if "=" in v)
        data = Path(environ[WORKDIR_VAR])
        owners = Path(environ[OWNER_DIR_VAR])  # the owner's profile and log
        from veza_synthetics.profile import load
        published = load(str(owners / "profile.toml"))
        ports = [int(published.backend.url.rsplit(":", 1)[1]), published.postgres.port,
                 int(published.redis.url.rsplit(":", 1)[1].split("/")[0])]
        assert any(data.glob("*/pgdata")), "the stack keeps its data under the guard's folder"
        os.kill(owner.pid if killed == "owner" else sandbox_up, signal.SIGKILL)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and any(_alive(pid, comm) for pid, comm in tree.items()):
            time.sleep(0.2)
        left = {pid: comm for pid, comm in tree.items() if _alive(pid, comm)}
        assert not left, f"still running after the {killed} was killed: {left}"
        while time.monotonic() < deadline and data.exists():
            time.sleep(0.2)
        assert not data.exists(), f"{data} left behind after the {killed} was killed"
        while time.monotonic() < deadline and owners.exists():
            time.sleep(0.2)
        assert not owners.exists(), f"{owners} left behind after the {killed} was killed"
        for port in ports:  # and none of the ports it published answers
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        owner.kill()
        owner.wait(10)


def test_the_sandbox_command_sigkilled_leaves_nothing_behind(tmp_path):
    """`veza-synth sandbox up`, the README's command, killed with SIGKILL: it runs under the guard, which dies
    with it, so no server of its own, no port it published and no folder outlives it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from veza_synthetics.profile import load
    profile_path = tmp_path / "up.toml"
    up = subprocess.Popen([sys.executable, "-m", "veza_synthetics", "sandbox", "up", "--no-wait-prometheus",
                           "--profile-out", str(profile_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not profile_path.exists() and up.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert profile_path.exists(), "the sandbox did not start"
    profile = load(str(profile_path))
    workdir = Path(profile.tls.ca_file).parents[1]  # the guard's folder, the sandbox's own inside it
    assert workdir.name.startswith("veza-sandbox-") and workdir.exists()
    ports = [int(profile.backend.url.rsplit(":", 1)[1]), profile.postgres.port,
             int(profile.redis.url.rsplit(":", 1)[1].split("/")[0]), int(profile.prometheus.url.rsplit(":", 1)[1])]

    def ours() -> list[int]:
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if str(workdir) in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(cmdline.parent.name))
            except OSError:
                continue
        return found
    assert ours(), "the sandbox's servers run from its folder"
    os.kill(up.pid, signal.SIGKILL)
    up.wait(timeout=10)
    deadline = time.monotonic() + 30
    while (ours() or workdir.exists()) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert ours() == [] and not workdir.exists()
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_time_scale_that_is_no_scale_is_one_clear_error():
    """`sandbox up --time-scale 1` gives the production server's real windows (a benchmark at production's pace);
    0 is refused before anything starts."""
    import subprocess
    import sys

    from veza_synthetics.sandbox.limits import B12_RULES, ProductionLimits
    run = subprocess.run([sys.executable, "-m", "veza_synthetics", "sandbox", "up", "--time-scale", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "--time-scale must be > 0" in run.stderr and "Traceback" not in run.stderr
    real = ProductionLimits(1.0)
    assert [limit.window_s for _, limit in real.rules] == [rule.window_s for rule in B12_RULES]
    logins = next(limit for rule, limit in real.rules if rule.name == "logins")
    assert [logins.admit("203.0.113.9", t) for t in (0.0, 100.0, 200.0, 300.0, 901.0)] == [True, True, True, False, True]
