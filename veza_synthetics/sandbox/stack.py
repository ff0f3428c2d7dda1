"""The sandbox: a whole reference Veza stack on loopback, with a switch for every fault.

Real PostgreSQL, Redis, Prometheus, nginx and the exporters production runs (node,
postgres, redis) as child processes; the backend API, the chat server, the stream server
and the admin (fault switch) API served from this process's event loop, each on its own port.
This module starts and stops them; parts.py holds them, switches.py, admin.py and published.py
act on them and say what they are.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SetupError
from ..profile import SANDBOX_VARIANTS, seconds, unresolved
from . import faults as fault_ids
from .admin import AdminApi
from .alerting import Alertmanager
from .backend import Backend
from .chat import Chat
from .frontdoor import Nginx
from .guard import WORKDIR_VAR
from .haproxy import HAProxy
from .host import HostTree
from .limits import TIME_SCALE
from .parts import BACKEND_INSTANCES, EXPORTER_JOBS, SCRAPE_JOBS, Parts, up
from .processes import LOOPBACK, Exporter, Postgres, Prometheus, Redis
from .proxy import DelayProxy
from .published import published_profile, write_profile
from .rules import RULES
from .seed import EXPORTER_ROLE, seed
from .serving import AppServer
from .state import SandboxState
from .stream import SimpleStreamServer, StreamServer
from .switches import FaultSwitches

# contract: the guide's Veza (veza-contract.md); deployed: every known variant of the public code at once, with its
# dev server; production-server: the same with its production server in front (B1, B2, B12)
VARIANTS = tuple(SANDBOX_VARIANTS)
EXPORTER_QUERIES = Path(__file__).parent.parent / "postgres-exporter-queries.yaml"


class Sandbox:
    def __init__(self, base_profile: Path | None = None, with_prometheus: bool = True, wait_prometheus: bool = True,
                 variant: str = "contract", time_scale: float = TIME_SCALE):
        if variant not in VARIANTS:
            raise SetupError(f"unknown sandbox variant {variant!r}: one of {', '.join(VARIANTS)}")
        self.base_profile = base_profile
        window = unresolved(str(base_profile))["prometheus"]["rate_window"] if base_profile else "5s"
        self.state = SandboxState(variant=variant, time_scale=time_scale)
        self.parts = Parts(deployed=self.state.deployed)
        self.switches = FaultSwitches(self.state, self.parts, seconds(window))
        self._prometheus_binary = Prometheus.available() if with_prometheus else None
        self._alertmanager_binary = Alertmanager.available() if with_prometheus else None
        self._wait_prometheus = wait_prometheus  # ready only once every target is scraped twice

    async def start(self, inject: Sequence[str] = ()) -> None:
        fault_ids.validate(list(inject))
        try:
            await self._start()
            for fault in inject:
                await self.switches.switch(fault, True)
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        s, p = self.state, self.parts
        # under the guard's folder when it runs under one (it removes it, even after a SIGKILL), else its own
        workdir = p.workdir = Path(tempfile.mkdtemp(prefix="veza-sandbox-", dir=os.environ.get(WORKDIR_VAR) or None))
        workdir.chmod(0o755)  # the postgres user must reach its data dir
        s.backend_log = str(workdir / "backend.log")
        pg = p.pg = Postgres(workdir, s.pg_password)
        # the public code keeps no session in Redis (B9), and its compose file lets Redis evict any key (D2)
        redis = p.redis = Redis(workdir, s.redis_password, "allkeys-lru" if s.deployed else "noeviction")
        mark = time.monotonic()
        await asyncio.gather(asyncio.to_thread(pg.init), self._start_monitoring(workdir))
        await asyncio.to_thread(pg.start)
        await asyncio.to_thread(redis.start)
        await seed(s, pg.socket_dsn, p.veza_db_dsn())
        mark = self._timed("postgres_and_redis", mark)
        s.redis_port = redis.port
        s.app_dsn = f"host={LOOPBACK} port={pg.port} dbname=veza_db user=veza_user password={s.app_password}"
        slow = "db.slow_connect"
        p.pg_proxy = DelayProxy(pg.port, lambda: s.faults.param(slow) if s.faults.on(slow) else 0.0)
        await p.pg_proxy.start()
        await self._start_servers()
        mark = self._timed("services", mark)
        await self._start_exporters(workdir)
        mark = self._timed("exporters", mark)
        if p.prometheus:
            p.prometheus.set_targets(p.scrape_targets())
            if self._wait_prometheus:
                await p.prometheus_scraped()
                self._timed("prometheus_first_scrapes", mark)

    async def _start_monitoring(self, workdir: Path) -> None:
        """Prometheus with Veza's rules, and Alertmanager, when installed."""
        if not self._prometheus_binary:
            return
        p = self.parts
        p.prometheus = Prometheus(workdir, self._prometheus_binary,
                                  list(EXPORTER_JOBS if self.state.deployed else SCRAPE_JOBS))
        if self._alertmanager_binary:
            p.alertmanager = Alertmanager(workdir, self._alertmanager_binary)
        p.prometheus.configure(RULES, p.alertmanager.port if p.alertmanager else None)
        await asyncio.gather(asyncio.to_thread(p.prometheus.start),
                             *([asyncio.to_thread(p.alertmanager.start)] if p.alertmanager else []))

    async def _start_servers(self) -> None:
        """The stream, backend, admin and chat servers, and the front doors before them."""
        s, p = self.state, self.parts
        servers = p.servers
        servers["stream"] = AppServer("stream", StreamServer(s).asgi())
        await servers["stream"].start()
        if s.deployed:  # the source's other stream binary, beside it (S8)
            servers["simple-stream"] = AppServer("simple-stream", SimpleStreamServer(s).asgi())
            await servers["simple-stream"].start()
        backend = p.backend = Backend(s)
        await backend.open()
        for instance in BACKEND_INSTANCES:
            servers[instance] = AppServer(instance, backend.asgi(instance))
        servers["admin"] = AppServer("admin", AdminApi(s, p, self.switches).asgi())
        for name in (*BACKEND_INSTANCES, "admin"):
            await servers[name].start()
        chat = p.chat = Chat(s)
        await chat.start()
        workdir = up(p.workdir)
        nginx = p.nginx = Nginx(workdir, [servers[i].port for i in BACKEND_INSTANCES], chat.port,
                                servers["stream"].port, deny_metrics=s.deployed)
        await asyncio.to_thread(nginx.start)
        if s.deployed:
            p.haproxy = HAProxy(workdir, servers[BACKEND_INSTANCES[0]].port, chat.port, servers["simple-stream"].port)
            await asyncio.to_thread(p.haproxy.start)
        s.stream_url = nginx.url("stream")  # what the backend signs: the public address

    async def _start_exporters(self, workdir: Path) -> None:
        """node_exporter on the instance's host tree; postgres_exporter (its own pg_monitor role, the
        shipped custom queries) and redis_exporter on the servers, as production deploys them."""
        s, p = self.state, self.parts
        p.host = HostTree(workdir, s.faults, p.stack_pids)
        await p.host.start()
        p.exporters = {
            "node": Exporter(workdir, "node", [f"--path.procfs={p.host.procfs}", "--collector.disable-defaults",
                                               "--collector.cpu", "--collector.meminfo", "--collector.filesystem"], {}),
            "postgres": Exporter(workdir, "postgres", [f"--extend.query-path={EXPORTER_QUERIES}"], {
                "DATA_SOURCE_NAME": f"postgresql://{EXPORTER_ROLE}:{s.exporter_password}@{LOOPBACK}:{up(p.pg).port}"
                                    "/veza_db?sslmode=disable"}),
            "redis": Exporter(workdir, "redis", ["-redis.addr", f"redis://{LOOPBACK}:{up(p.redis).port}"],
                              {"REDIS_PASSWORD": s.redis_password}),
        }
        await asyncio.gather(*(asyncio.to_thread(e.start) for e in p.exporters.values()))

    def _timed(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.parts.timings[phase] = round(now - since, 3)
        return now

    async def stop(self) -> None:
        p = self.parts
        steps = [self.switches.release_held]
        if p.chat:
            steps.append(p.chat.stop)
        steps += [server.stop for server in p.servers.values()]
        if p.backend:
            steps.append(p.backend.close)
        if p.pg_proxy:
            steps.append(p.pg_proxy.stop)
        if p.host:
            steps.append(p.host.stop)
        for step in steps:
            with contextlib.suppress(Exception):
                await step()
        for proc in (p.nginx, p.haproxy, p.prometheus, p.alertmanager, *p.exporters.values(), p.redis, p.pg):
            if proc is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(proc.stop)
        if p.workdir:
            shutil.rmtree(p.workdir, ignore_errors=True)
            p.workdir = None

    def profile(self) -> dict[str, Any]:
        return published_profile(self.state, self.parts, self.base_profile)

    def write_profile(self, path: Path) -> None:
        write_profile(self.profile(), path)
