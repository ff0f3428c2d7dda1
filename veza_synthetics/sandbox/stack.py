"""The sandbox: a whole reference Veza stack on loopback, with a switch for every fault.

Real PostgreSQL, Redis, Prometheus, nginx and the exporters production runs (node,
postgres, redis) as child processes; the backend API, the chat server, the stream server
and the admin (fault switch) API served from this process's event loop, each on its own port.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import tomli_w
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..catalog import load as load_catalog
from ..errors import SetupError
from ..profile import SANDBOX_VARIANTS, seconds, unresolved
from . import faults as fault_ids
from .alerting import Alertmanager
from .audio import CANARY_NAME, DURATION_S
from .backend import Backend, password_hash
from .chat import Chat
from .frontdoor import CERT_DAYS, RELOAD_SETTLE_S, DoorSettings, Nginx
from .guard import WORKDIR_VAR
from .haproxy import HAProxy
from .host import HostTree
from .limits import TIME_SCALE
from .processes import LOOPBACK, PROBER_JOB, Exporter, Postgres, Prometheus, Redis
from .proxy import DelayProxy
from .serving import AppServer
from .state import SandboxState
from .stream import SimpleStreamServer, StreamServer

# contract: the guide's Veza (veza-contract.md); deployed: every known variant of the public code at once, with its
# dev server; production-server: the same with its production server in front (B1, B2, B12)
VARIANTS = tuple(SANDBOX_VARIANTS)
BACKEND_INSTANCES = ("backend-1", "backend-2")  # behind one nginx upstream; the front.* faults act on the second
SCRAPE_JOBS = ("veza-backend", "veza-chat", "veza-stream", "node", "postgres", "redis")  # scrape_targets() fills them
# The public code's servers export no Prometheus text (backend and stream /metrics are JSON, B3 and S7; the chat
# has none, C5): the deployed variant's Prometheus scrapes the exporters only.
EXPORTER_JOBS = ("node", "postgres", "redis")
MONITOR_ROLE, MONITOR_CONNECTIONS = "veza_monitor", 5
EXPORTER_ROLE, EXPORTER_CONNECTIONS = "veza_exporter", 3  # postgres_exporter's own pg_monitor role
EXPORTER_QUERIES = Path(__file__).parent.parent / "postgres-exporter-queries.yaml"
SYNTHETIC_EMAIL = "synthetic@veza.local"
ADMIN_EMAIL = "admin@veza.local"
CANARY_TRACK_ID = 50001  # inserted right after schema.sql's 50,000 seed tracks
# Veza's alert rules (guide section "Alertes configurées"), their rate windows scaled to the
# sandbox's 1 s scrapes as its profile's rate_window is (5m -> 15s); the `for:` durations are kept,
# so an alert fires on errors that last minutes, not on one test's fault.
RULES = """groups:
  - name: veza_alerts
    rules:
      - alert: HighErrorRate
        expr: rate(http_requests_total{status=~"5.."}[15s]) > 0.1
        for: 2m
        labels: {severity: critical}
        annotations: {summary: "Taux d'erreur élevé", description: "Le taux d'erreur HTTP 5xx est supérieur à 10%"}
      - alert: HighResponseTime
        expr: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[15s]))) > 0.2
        for: 5m
        labels: {severity: warning}
      - alert: ErrorRateAboveOnePercent
        expr: sum(rate(http_requests_total{status=~"5.."}[15s])) / sum(rate(http_requests_total[15s])) > 0.01
        for: 5m
        labels: {severity: warning}
      - alert: HighCPU
        expr: 100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[15s]))) > 80
        for: 5m
        labels: {severity: warning}
      - alert: HighMemory
        expr: 100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 85
        for: 5m
        labels: {severity: warning}
      - alert: DiskAlmostFull
        expr: 100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes) > 90
        for: 5m
        labels: {severity: warning}
"""
NO_RULES = "groups: []\n"


T = TypeVar("T")


def _up(component: T | None) -> T:
    """A component of the running sandbox (None only before start and after stop)."""
    if component is None:
        raise SetupError("the sandbox is not running")
    return component


class Sandbox:
    def __init__(self, base_profile: Path | None = None, with_prometheus: bool = True, wait_prometheus: bool = True,
                 variant: str = "contract", time_scale: float = TIME_SCALE):
        if variant not in VARIANTS:
            raise SetupError(f"unknown sandbox variant {variant!r}: one of {', '.join(VARIANTS)}")
        self.base_profile = base_profile
        window = unresolved(str(base_profile))["prometheus"]["rate_window"] if base_profile else "5s"
        self.rate_window_s = seconds(window)  # what the profile's checks read rate() over
        self.state = SandboxState(variant=variant, time_scale=time_scale)
        self.workdir: Path | None = None
        self.pg: Postgres | None = None
        self.redis: Redis | None = None
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None
        self.pg_proxy: DelayProxy | None = None
        self.backend: Backend | None = None
        self.chat: Chat | None = None
        self.servers: dict[str, AppServer] = {}
        self.host: HostTree | None = None
        self.exporters: dict[str, Exporter] = {}
        self.nginx: Nginx | None = None
        self.haproxy: HAProxy | None = None  # the deployed variant's historical front door (D3)
        self._held: list[psycopg.AsyncConnection] = []
        self._exhausting: asyncio.Task[None] | None = None  # db.pool_exhausted taking back every freed slot
        self.timings: dict[str, float] = {}  # start phases, seconds (the benchmarks read them)
        self._switch_lock = asyncio.Lock()
        self._prometheus_binary = Prometheus.available() if with_prometheus else None
        self._alertmanager_binary = Alertmanager.available() if with_prometheus else None
        self._wait_prometheus = wait_prometheus  # ready only once every target is scraped twice

    # -- start / stop ---------------------------------------------------------------------
    async def start(self, inject: Sequence[str] = ()) -> None:
        fault_ids.validate(list(inject))
        try:
            await self._start()
            for fault in inject:
                await self.switch(fault, True)
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s = self.state
        # under the guard's folder when it runs under one (it removes it, even after a SIGKILL), else its own
        self.workdir = Path(tempfile.mkdtemp(prefix="veza-sandbox-", dir=os.environ.get(WORKDIR_VAR) or None))
        self.workdir.chmod(0o755)  # the postgres user must reach its data dir
        s.backend_log = str(self.workdir / "backend.log")
        self.pg = Postgres(self.workdir, s.pg_password)
        # the public code keeps no session in Redis (B9), and its compose file lets Redis evict any key (D2)
        self.redis = Redis(self.workdir, s.redis_password, "allkeys-lru" if s.deployed else "noeviction")
        mark = time.monotonic()
        if self._prometheus_binary:
            self.prometheus = Prometheus(self.workdir, self._prometheus_binary,
                                         list(EXPORTER_JOBS if s.deployed else SCRAPE_JOBS))
            if self._alertmanager_binary:
                self.alertmanager = Alertmanager(self.workdir, self._alertmanager_binary)
            self.prometheus.configure(RULES, self.alertmanager.port if self.alertmanager else None)
            await asyncio.gather(asyncio.to_thread(self.prometheus.start), asyncio.to_thread(self.pg.init),
                                 *([asyncio.to_thread(self.alertmanager.start)] if self.alertmanager else []))
        else:
            await asyncio.to_thread(self.pg.init)
        await asyncio.to_thread(self.pg.start)
        await asyncio.to_thread(self.redis.start)
        await self._seed()
        mark = self._timed("postgres_and_redis", mark)
        s.redis_port = self.redis.port
        s.app_dsn = f"host={LOOPBACK} port={self.pg.port} dbname=veza_db user=veza_user password={s.app_password}"
        slow = "db.slow_connect"
        self.pg_proxy = DelayProxy(self.pg.port, lambda: s.faults.param(slow) if s.faults.on(slow) else 0.0)
        await self.pg_proxy.start()

        self.servers["stream"] = AppServer("stream", StreamServer(s).asgi())
        await self.servers["stream"].start()
        if s.deployed:  # the source's other stream binary, beside it (S8)
            self.servers["simple-stream"] = AppServer("simple-stream", SimpleStreamServer(s).asgi())
            await self.servers["simple-stream"].start()
        self.backend = Backend(s)
        await self.backend.open()
        for instance in BACKEND_INSTANCES:
            self.servers[instance] = AppServer(instance, self.backend.asgi(instance))
        self.servers["admin"] = AppServer("admin", self.admin_asgi())
        for name in (*BACKEND_INSTANCES, "admin"):
            await self.servers[name].start()
        self.chat = Chat(s)
        await self.chat.start()
        self.nginx = Nginx(self.workdir, [self.servers[i].port for i in BACKEND_INSTANCES], self.chat.port,
                           self.servers["stream"].port, deny_metrics=s.deployed)
        await asyncio.to_thread(self.nginx.start)
        if s.deployed:
            self.haproxy = HAProxy(self.workdir, self.servers[BACKEND_INSTANCES[0]].port, self.chat.port,
                                   self.servers["simple-stream"].port)
            await asyncio.to_thread(self.haproxy.start)
        s.stream_url = self.nginx.url("stream")  # what the backend signs: the public address
        mark = self._timed("services", mark)
        await self._start_exporters()
        mark = self._timed("exporters", mark)
        if self.prometheus:
            self.prometheus.set_targets(self.scrape_targets())
            if self._wait_prometheus:
                await self._prometheus_scraped()
                self._timed("prometheus_first_scrapes", mark)

    def _timed(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.timings[phase] = round(now - since, 3)
        return now

    def stack_pids(self) -> list[int]:
        """The processes that make up this Veza stack (its monitoring is not): this one, with the backend, chat
        and stream servers, Redis, PostgreSQL's backends."""
        pids = [os.getpid()] + [p.proc.pid for p in (self.redis,) if p and p.proc]
        if self.pg is not None:
            pids += self.pg.pids()
        return pids

    async def _seed(self) -> None:
        s = self.state
        async with await psycopg.AsyncConnection.connect(_up(self.pg).socket_dsn, autocommit=True) as conn:
            await conn.execute(f"CREATE ROLE veza_user LOGIN PASSWORD '{s.app_password}'")
            await conn.execute("CREATE DATABASE veza_db OWNER veza_user")
        async with await psycopg.AsyncConnection.connect(_up(self.pg).socket_dsn.replace("dbname=postgres", "dbname=veza_db"),
                                                         autocommit=True) as conn:
            await conn.execute("CREATE EXTENSION pg_stat_statements")
            await conn.execute("CREATE EXTENSION pg_prewarm")
            await conn.execute("SET ROLE veza_user")
            await conn.execute(Path(__file__).with_name("schema.sql").read_text().replace(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", ""))
            await conn.execute("INSERT INTO tracks (title, artist, duration_s, stream_name) "
                               "VALUES ('Veza Canary', 'Veza', %s, %s)", (DURATION_S, CANARY_NAME))
            for username, email, role, password in (("synthetic", SYNTHETIC_EMAIL, "user", s.user_password),
                                                    ("admin", ADMIN_EMAIL, "admin", s.admin_password)):
                salt = secrets.token_hex(8)
                await conn.execute("INSERT INTO users (username, email, role, password_hash, salt) "
                                   "VALUES (%s, %s, %s, %s, %s)", (username, email, role, password_hash(password, salt), salt))
            await conn.execute("RESET ROLE")
            # What production grants the suite: pg_monitor (statistics, activity), a connection limit,
            # and a read on the deployed variant's refresh_tokens. Never a superuser.
            await conn.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{s.monitor_password}' "
                               f"CONNECTION LIMIT {MONITOR_CONNECTIONS} IN ROLE pg_monitor")
            await conn.execute(f"GRANT SELECT ON refresh_tokens TO {MONITOR_ROLE}")
            await conn.execute(f"CREATE ROLE {EXPORTER_ROLE} LOGIN PASSWORD '{s.exporter_password}' "
                               f"CONNECTION LIMIT {EXPORTER_CONNECTIONS} IN ROLE pg_monitor")
            await conn.execute("SELECT pg_stat_statements_reset()")

    async def _start_exporters(self) -> None:
        """node_exporter on the instance's host tree; postgres_exporter (its own pg_monitor role, the
        shipped custom queries) and redis_exporter on the servers, as production deploys them."""
        s = self.state
        workdir = _up(self.workdir)
        self.host = HostTree(workdir, s.faults, self.stack_pids)
        await self.host.start()
        self.exporters = {
            "node": Exporter(workdir, "node", [f"--path.procfs={self.host.procfs}", "--collector.disable-defaults",
                                                    "--collector.cpu", "--collector.meminfo", "--collector.filesystem"], {}),
            "postgres": Exporter(workdir, "postgres", [f"--extend.query-path={EXPORTER_QUERIES}"], {
                "DATA_SOURCE_NAME": f"postgresql://{EXPORTER_ROLE}:{s.exporter_password}@{LOOPBACK}:{_up(self.pg).port}"
                                    "/veza_db?sslmode=disable"}),
            "redis": Exporter(workdir, "redis", ["-redis.addr", f"redis://{LOOPBACK}:{_up(self.redis).port}"],
                              {"REDIS_PASSWORD": s.redis_password}),
        }
        await asyncio.gather(*(asyncio.to_thread(e.start) for e in self.exporters.values()))

    def scrape_targets(self) -> dict[str, list[int]]:
        """The ports Prometheus scrapes, by job (SCRAPE_JOBS; EXPORTER_JOBS only for the deployed variant)."""
        exporters = {job: [exporter.port] for job, exporter in self.exporters.items()}
        if self.state.deployed:
            return exporters
        return {"veza-backend": [self.servers[i].port for i in BACKEND_INSTANCES], "veza-chat": [_up(self.chat).port],
                "veza-stream": [self.servers["stream"].port], **exporters}

    async def _prometheus_scraped(self) -> None:
        """Every target scraped twice, so rate() over a few seconds has data."""
        targets = sum(len(ports) for ports in self.scrape_targets().values())
        scraped = f'count(count_over_time(up{{job!="{PROBER_JOB}"}}[1m]) >= 2)'
        if not await self._prometheus_until(scraped, lambda n: n == targets, 30):
            raise SetupError("sandbox: Prometheus did not scrape every target within 30 s")

    async def _prometheus_until(self, query: str, holds: Callable[[float], bool], timeout_s: float) -> bool:
        """Ask Prometheus `query` (one value) until `holds(value)`; False when timeout_s passed first."""
        url = f"http://{LOOPBACK}:{_up(self.prometheus).port}/api/v1/query"
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError, IndexError):
                    data = (await client.get(url, params={"query": query})).json()
                    if holds(float(data["data"]["result"][0]["value"][1])):
                        return True
                await asyncio.sleep(0.2)
        return False

    async def stop(self) -> None:
        steps = [self._release_held]
        if self.chat:
            steps.append(self.chat.stop)
        steps += [server.stop for server in self.servers.values()]
        if self.backend:
            steps.append(self.backend.close)
        if self.pg_proxy:
            steps.append(self.pg_proxy.stop)
        if self.host:
            steps.append(self.host.stop)
        for step in steps:
            with contextlib.suppress(Exception):
                await step()
        for proc in (self.nginx, self.haproxy, self.prometheus, self.alertmanager, *self.exporters.values(), self.redis, self.pg):
            if proc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(proc.stop)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # -- faults ---------------------------------------------------------------------------
    async def set_faults(self, wanted: list[str]) -> None:
        fault_ids.validate(wanted)
        for fault in sorted(self.state.faults.active - set(wanted)):
            await self.switch(fault, False)
        for fault in wanted:
            await self.switch(fault, True)

    async def switch(self, fault: str, on: bool) -> None:
        fault_ids.validate([fault])
        async with self._switch_lock:
            if (fault in self.state.faults.active) == on:
                return
            if on:
                self.state.faults.active.add(fault)
            hook = self._switches().get(fault)
            if hook:
                await hook(on)
            if not on:
                self.state.faults.active.discard(fault)

    def fire_once(self, fault: str) -> None:
        """A blip: the fault acts on one request, then switches itself off."""
        fault_ids.validate([fault])
        if fault in self._switches():
            raise SetupError(f"{fault} switches a whole server: it cannot fire once")
        self.state.faults.active.add(fault)
        self.state.faults.once.add(fault)

    def _switches(self) -> dict[str, Callable[[bool], Awaitable[None]]]:
        """The faults that switch a whole server or the data; the others act per request (faults.on)."""
        return {"db.pool_exhausted": self._on_db_pool_exhausted, "db.idle_transactions": self._on_db_idle_transactions,
                "db.lock_held": self._on_db_lock_held,
                "db.invalid_constraint": self._on_db_invalid_constraint,
                "db.slow_queries": self._on_db_slow_queries, "perf.disk_full": self._on_perf_disk_full,
                "infra.redis_down": self._on_infra_redis_down, "infra.postgres_down": self._on_infra_postgres_down,
                "infra.stream_down": self._on_infra_stream_down, "front.idle_timeout": self._on_front_idle_timeout,
                "front.rate_limit": self._on_front_rate_limit, "front.cert_expiring": self._on_front_cert_expiring,
                "infra.rules_missing": self._on_infra_rules_missing}

    async def _seen_by_prometheus(self, faults: list[str], since: float) -> None:
        """Return once Prometheus sees these faults' switch (catalog `seen_by`): every target scraped since
        the switch was complete, and over the whole rate window for the faults read through rate()."""
        ways = {load_catalog().faults[f].seen_by for f in faults} - {""}
        if not ways or not self.prometheus:
            return
        window_s = self.rate_window_s if "rate_window" in ways else 0.0
        if not await self._prometheus_until("min(timestamp(up))", lambda t: t > since + window_s, 30 + window_s):
            raise SetupError(f"Prometheus did not scrape every target within {30 + window_s:g} s of switching "
                         f"{', '.join(faults)}")

    async def _sql(self, *statements: str) -> None:
        async with await psycopg.AsyncConnection.connect(_up(self.pg).socket_dsn.replace("dbname=postgres", "dbname=veza_db"),
                                                         autocommit=True) as conn:
            for statement in statements:
                await conn.execute(statement)

    async def _on_db_pool_exhausted(self, on: bool) -> None:
        """Ordinary connections held until PostgreSQL refuses the next one, and any slot another client
        frees later taken back (a leak gives nothing back): the pool stays exhausted while the fault is on."""
        if not on:
            return await self._release_held()
        await self._hold_until_refused()
        self._exhausting = asyncio.create_task(self._keep_exhausted())

    async def _hold_until_refused(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.state.app_dsn, connect_timeout=3,
                                                             application_name="sandbox-pool-exhaustion")
            except psycopg.OperationalError:
                return
            self._held.append(conn)

    async def _keep_exhausted(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self._hold_until_refused()

    async def _on_db_idle_transactions(self, on: bool) -> None:
        """An outside client (a job that forgot to commit) holding transactions open, idle, each with an
        id of its own: the snapshot and the connection stay taken."""
        if not on:
            return await self._release_held()
        for _ in range(int(self.state.faults.param("db.idle_transactions"))):
            conn = await psycopg.AsyncConnection.connect(self.state.app_dsn, connect_timeout=3,
                                                         application_name="sandbox-forgotten-commit")
            await conn.execute("BEGIN")
            await conn.execute("SELECT txid_current()")
            self._held.append(conn)

    async def _on_db_lock_held(self, on: bool) -> None:
        """A migration left open: an outside session holds ACCESS EXCLUSIVE on tracks, idle in its transaction."""
        if not on:
            return await self._release_held()
        conn = await psycopg.AsyncConnection.connect(self.state.app_dsn, connect_timeout=3,
                                                     application_name="sandbox-migration")
        await conn.execute("BEGIN")
        await conn.execute("LOCK TABLE tracks IN ACCESS EXCLUSIVE MODE")
        self._held.append(conn)

    async def _release_held(self) -> None:
        if self._exhausting is not None:
            self._exhausting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._exhausting
            self._exhausting = None
        held, self._held = self._held, []
        for conn in held:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _on_db_invalid_constraint(self, on: bool) -> None:
        if on:
            await self._sql("ALTER TABLE playlists DROP CONSTRAINT playlists_owner_fk",
                            "INSERT INTO playlists (owner_id, name) VALUES (999999, 'orphan of a deleted user')",
                            "ALTER TABLE playlists ADD CONSTRAINT playlists_owner_fk FOREIGN KEY (owner_id) "
                            "REFERENCES users (id) NOT VALID")
        else:
            await self._sql("DELETE FROM playlists WHERE owner_id NOT IN (SELECT id FROM users)",
                            "ALTER TABLE playlists VALIDATE CONSTRAINT playlists_owner_fk")

    async def _on_db_slow_queries(self, on: bool) -> None:
        await self._sql("DROP INDEX IF EXISTS tracks_title_idx" if on else
                        "CREATE INDEX IF NOT EXISTS tracks_title_idx ON tracks (lower(title) text_pattern_ops)")

    async def _on_perf_disk_full(self, on: bool) -> None:
        await asyncio.to_thread(_up(self.host).fill_data_volume, self.state.faults.param("perf.disk_full") if on else None)

    async def _on_infra_redis_down(self, on: bool) -> None:
        await asyncio.to_thread(_up(self.redis).stop if on else _up(self.redis).start)

    async def _on_infra_postgres_down(self, on: bool) -> None:
        if on:
            await self._release_held()
        await asyncio.to_thread(_up(self.pg).stop if on else _up(self.pg).start)
        if not on:  # the backend reconnects; an operator warms the cache back up after a restart
            await _up(self.backend).reconnect_database()
            await _up(self.chat).reconnect_database()
            await self._sql("SELECT pg_prewarm(c.oid::regclass) FROM pg_class c WHERE c.relkind IN ('r', 'i') "
                            "AND c.relnamespace IN ('public'::regnamespace, 'pg_catalog'::regnamespace)")

    async def _on_infra_stream_down(self, on: bool) -> None:
        await (self.servers["stream"].stop() if on else self.servers["stream"].start())

    async def _on_front_idle_timeout(self, on: bool) -> None:
        await self._reload_door(chat_read_timeout="1s" if on else DoorSettings.chat_read_timeout)

    async def _on_front_rate_limit(self, on: bool) -> None:
        rate = self.state.faults.param("front.rate_limit")
        await self._reload_door(api_rate=f"{rate:g}r/s" if on else DoorSettings.api_rate,
                                api_burst=2 if on else DoorSettings.api_burst)

    async def _on_front_cert_expiring(self, on: bool) -> None:
        await asyncio.to_thread(_up(self.nginx).reissue, self.state.faults.param("front.cert_expiring") if on else CERT_DAYS)
        await asyncio.sleep(RELOAD_SETTLE_S)

    async def _reload_door(self, **settings: object) -> None:
        await asyncio.to_thread(_up(self.nginx).reload, **settings)
        await asyncio.sleep(RELOAD_SETTLE_S)

    async def _on_infra_rules_missing(self, on: bool) -> None:
        if self.prometheus:
            self.prometheus.reload(NO_RULES if on else RULES)
            await asyncio.to_thread(self.prometheus.rules_loaded, not on)

    # -- admin API (its own port, never on a Veza-facing path) -----------------------------
    def admin_asgi(self) -> Starlette:
        return Starlette(routes=[Route("/writes", self._admin_writes), Route("/stream-secret", self._admin_stream_secret),
                                 Route("/alternatives", self._admin_alternatives),
                                 Route("/prometheus-ready", self._admin_prometheus_ready),
                                 Route("/logs", self._admin_logs), Route("/sessions", self._admin_sessions),
                                 Route("/alerting", self._admin_alerting, methods=["GET", "PUT"]),
                                 Route("/faults", self._admin_faults, methods=["GET", "PUT"]),
                                 Route("/faults/{fault}", self._admin_one, methods=["POST", "DELETE"])])

    async def _admin_faults(self, request: Request) -> JSONResponse:
        if request.method == "PUT":
            try:
                body = await request.json()
                params = {k: float(v) for k, v in body.get("params", {}).items()}
                unknown = set(params) - set(fault_ids.default_sizes())
                if unknown:
                    return JSONResponse({"error": f"faults without a size: {sorted(unknown)}; sized faults: "
                                                  f"{sorted(fault_ids.default_sizes())}"}, 400)
                self.state.faults.params = {**fault_ids.default_sizes(), **params}
                before = set(self.state.faults.active)
                await self.set_faults(list(body["active"]))
                # switched on or off alike, and from when the switch is complete (holding a whole pool takes a
                # while): the next reader of Prometheus sees the platform as it is now
                await self._seen_by_prometheus(sorted(before ^ self.state.faults.active), time.time())
            except SetupError as exc:
                return JSONResponse({"error": str(exc)}, 404)
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": 'expected {"active": [fault ids]}'}, 400)
        return JSONResponse({"active": sorted(self.state.faults.active), "known": sorted(load_catalog().faults),
                             "params": self.state.faults.params, "started_in_s": self.timings})

    async def _admin_one(self, request: Request) -> JSONResponse:
        fault, on = request.path_params["fault"], request.method == "POST"
        try:
            if on and request.query_params.get("once"):
                self.fire_once(fault)
            else:
                await self.switch(fault, on)
        except SetupError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return JSONResponse({"active": sorted(self.state.faults.active), "once": sorted(self.state.faults.once)})

    async def _admin_writes(self, request: Request) -> JSONResponse:
        """Every write the suite made: API requests that change data (those of one client with
        ?user_agent=), SQL that is not a read, and the chat messages per conversation (those the chat server
        stored, and those the backend's own chat re-broadcast)."""
        agent = request.query_params.get("user_agent")
        http = [entry for entry, by in self.state.write_requests if agent is None or by == agent]
        stored = await _up(self.chat).stored_messages()  # None while the database cannot say
        chat = None if stored is None else dict(Counter(stored) + self.state.backend_chat_sent)
        return JSONResponse({"http": http, "logins": dict(self.state.logins), "throttled": self.state.throttled,
                             "sql": _up(self.pg).suite_writes(), "chat": chat})

    async def _admin_prometheus_ready(self, request: Request) -> JSONResponse:
        """Waits (up to 30 s) until Prometheus has scraped every target twice: a run that started the
        sandbox without waiting asks here before its first check that reads Prometheus."""
        if not self.prometheus:
            return JSONResponse({"error": "this sandbox runs without Prometheus"}, 404)
        try:
            await self._prometheus_scraped()
        except SetupError as exc:
            return JSONResponse({"error": str(exc)}, 503)
        return JSONResponse({"ready": True})

    async def _admin_logs(self, request: Request) -> JSONResponse:
        """The front door's access log and the backend's request log (the last 2000 lines of each), for the
        tests that find a report's request and trace ids where an on-call engineer would look."""
        def tail(path: Path) -> list[str]:
            return path.read_text(errors="replace").splitlines()[-2000:] if path.is_file() else []
        access = self.nginx.prefix / "logs" / "access.log" if self.nginx else Path()
        return JSONResponse({"access": tail(access), "backend": tail(Path(self.state.backend_log))})

    async def _admin_sessions(self, request: Request) -> JSONResponse:
        """Sessions still open (not logged out, not expired), all or those one client opened (?user_agent=)."""
        return JSONResponse({"open": await _up(self.backend).open_sessions(request.query_params.get("user_agent"))})

    async def _admin_alerting(self, request: Request) -> JSONResponse:
        """The sandbox's Prometheus and Alertmanager; PUT {"prober": "HOST:PORT", "webhook": URL} makes its
        Prometheus scrape a `veza-synth serve` (job veza_synthetics_serve) and its Alertmanager route to the
        webhook."""
        if not (self.prometheus and self.alertmanager):
            return JSONResponse({"error": "this sandbox runs without Prometheus or Alertmanager"}, 404)
        if request.method == "PUT":
            try:
                body = await request.json()
                port = int(str(body["prober"]).rpartition(":")[2])
                self.alertmanager.route_to(str(body["webhook"]))
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": 'expected {"prober": "127.0.0.1:PORT", "webhook": "http://..."}'}, 400)
            except SetupError as exc:
                return JSONResponse({"error": str(exc)}, 400)
            self.prometheus.set_targets({PROBER_JOB: [port]})
        return JSONResponse({"prometheus": f"http://{LOOPBACK}:{self.prometheus.port}", "alertmanager": self.alertmanager.url,
                             "prober_job": PROBER_JOB, "webhook": self.alertmanager.webhook})

    async def _admin_stream_secret(self, request: Request) -> JSONResponse:
        """For the tests of a profile that signs locally: production gives no such secret."""
        return JSONResponse({"secret": self.state.stream_secret, "canary": CANARY_NAME})

    async def _admin_alternatives(self, request: Request) -> JSONResponse:
        """The deployed variant's other shapes of the public code, served beside its profile's, for the tests
        of a profile pointing there: simple_stream_server (S8) and the historical HAProxy front door (D3)."""
        if self.haproxy is None:
            return JSONResponse({"error": "only the deployed variant serves the public code's alternatives"}, 404)
        return JSONResponse({"simple_stream": {"url": self.servers["simple-stream"].url, "canary": SimpleStreamServer.name},
                             "haproxy": {"url": self.haproxy.url, "stats": self.haproxy.stats_url}})

    # -- the profile it publishes ------------------------------------------------------------
    def profile(self) -> dict[str, Any]:
        s = self.state
        profile = {
            "name": Path(SANDBOX_VARIANTS[s.variant]).stem, "kind": "sandbox", "allow": "writes",
            "backend": {"url": _up(self.nginx).url("backend")},
            "chat": {"url": f"{_up(self.nginx).url('chat', 'wss')}/{'ws' if s.deployed else 'chat'}",
                     "health_url": f"{_up(self.nginx).url('chat')}/health"},
            # The contract's backend signs the canary's URL and says its length: no secret. The public code has
            # no route that signs one (B13) and no stream server that says a length (S6, S8): the suite signs
            # with the stream server's SECRET_KEY and is told the canary's length, as a team running it must.
            "stream": {"url": s.stream_url, "canary_track_id": CANARY_TRACK_ID, "canary": CANARY_NAME,
                       **({"secret": s.stream_secret, "canary_duration_s": DURATION_S} if s.deployed else {})},
            "tls": {"ca_file": str(_up(self.nginx).ca.ca_file)},
            "postgres": {"host": LOOPBACK, "port": _up(self.pg_proxy).port, "dbname": "veza_db", "user": MONITOR_ROLE,
                         "password": s.monitor_password},
            "redis": {"url": f"redis://{LOOPBACK}:{_up(self.redis).port}/0", "password": s.redis_password},
            "accounts": {"user_email": SYNTHETIC_EMAIL, "user_password": s.user_password,
                         "admin_email": ADMIN_EMAIL, "admin_password": s.admin_password},
            "sandbox": {"admin_url": self.servers["admin"].url},
        }
        if self.prometheus:
            profile["prometheus"] = {"url": f"http://{LOOPBACK}:{self.prometheus.port}"}
        if self.base_profile:
            profile["extends"] = str(self.base_profile)
        return profile

    def write_profile(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(self.profile()))
        tmp.chmod(0o600)
        tmp.replace(path)
