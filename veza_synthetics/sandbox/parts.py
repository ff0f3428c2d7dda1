"""The running sandbox's parts (servers, child processes, workdir) and what Prometheus sees of them: what the
orchestration starts, the fault switches act on, the admin API and the published profile read."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from ..errors import SetupError
from .alerting import Alertmanager
from .backend import Backend
from .chat import Chat
from .frontdoor import Nginx
from .haproxy import HAProxy
from .host import HostTree
from .processes import LOOPBACK, PROBER_JOB, Exporter, Postgres, Prometheus, Redis
from .proxy import DelayProxy
from .serving import AppServer

BACKEND_INSTANCES = ("backend-1", "backend-2")  # behind one nginx upstream; the front.* faults act on the second
SCRAPE_JOBS = ("veza-backend", "veza-chat", "veza-stream", "node", "postgres", "redis")  # scrape_targets() fills them
# The public code's servers export no Prometheus text (backend and stream /metrics are JSON, B3 and S7; the chat
# has none, C5): the deployed variant's Prometheus scrapes the exporters only.
EXPORTER_JOBS = ("node", "postgres", "redis")

T = TypeVar("T")


def up(component: T | None) -> T:
    """A component of the running sandbox (None only before start and after stop)."""
    if component is None:
        raise SetupError("the sandbox is not running")
    return component


@dataclass
class Parts:
    deployed: bool
    workdir: Path | None = None
    pg: Postgres | None = None
    redis: Redis | None = None
    prometheus: Prometheus | None = None
    alertmanager: Alertmanager | None = None
    pg_proxy: DelayProxy | None = None
    backend: Backend | None = None
    chat: Chat | None = None
    servers: dict[str, AppServer] = field(default_factory=dict)
    host: HostTree | None = None
    exporters: dict[str, Exporter] = field(default_factory=dict)
    nginx: Nginx | None = None
    haproxy: HAProxy | None = None  # the deployed variant's historical front door (D3)
    timings: dict[str, float] = field(default_factory=dict)  # start phases, seconds (the benchmarks read them)

    def veza_db_dsn(self) -> str:
        """The superuser's socket to the platform's database (seeding and the data faults)."""
        return up(self.pg).socket_dsn.replace("dbname=postgres", "dbname=veza_db")

    def stack_pids(self) -> list[int]:
        """The processes that make up this Veza stack (its monitoring is not): this one, with the backend, chat
        and stream servers, Redis, PostgreSQL's backends."""
        pids = [os.getpid()] + [p.proc.pid for p in (self.redis,) if p and p.proc]
        if self.pg is not None:
            pids += self.pg.pids()
        return pids

    def scrape_targets(self) -> dict[str, list[int]]:
        """The ports Prometheus scrapes, by job (SCRAPE_JOBS; EXPORTER_JOBS only for the deployed variant)."""
        exporters = {job: [exporter.port] for job, exporter in self.exporters.items()}
        if self.deployed:
            return exporters
        return {"veza-backend": [self.servers[i].port for i in BACKEND_INSTANCES], "veza-chat": [up(self.chat).port],
                "veza-stream": [self.servers["stream"].port], **exporters}

    async def prometheus_scraped(self) -> None:
        """Every target scraped twice, so rate() over a few seconds has data."""
        targets = sum(len(ports) for ports in self.scrape_targets().values())
        scraped = f'count(count_over_time(up{{job!="{PROBER_JOB}"}}[1m]) >= 2)'
        if not await self.prometheus_until(scraped, lambda n: n == targets, 30):
            raise SetupError("sandbox: Prometheus did not scrape every target within 30 s")

    async def prometheus_until(self, query: str, holds: Callable[[float], bool], timeout_s: float) -> bool:
        """Ask Prometheus `query` (one value) until `holds(value)`; False when timeout_s passed first."""
        url = f"http://{LOOPBACK}:{up(self.prometheus).port}/api/v1/query"
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError, KeyError, ValueError, IndexError):
                    data = (await client.get(url, params={"query": query})).json()
                    if holds(float(data["data"]["result"][0]["value"][1])):
                        return True
                await asyncio.sleep(0.2)
        return False
