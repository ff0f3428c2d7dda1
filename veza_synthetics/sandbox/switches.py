"""The fault switches that act on a whole server or on the data (an explicit table, one handler each); the other
faults act per request where the servers read them (faults.on)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import psycopg

from ..catalog import load as load_catalog
from ..errors import SetupError
from . import faults as fault_ids
from .frontdoor import CERT_DAYS, RELOAD_SETTLE_S, DoorSettings
from .parts import Parts, up
from .rules import NO_RULES, RULES
from .state import SandboxState

Handler = Callable[[bool], Awaitable[None]]


class FaultSwitches:
    def __init__(self, state: SandboxState, parts: Parts, rate_window_s: float):
        self.state, self.parts = state, parts
        self.rate_window_s = rate_window_s  # what the profile's checks read rate() over
        self._held: list[psycopg.AsyncConnection] = []
        self._exhausting: asyncio.Task[None] | None = None  # db.pool_exhausted taking back every freed slot
        self._lock = asyncio.Lock()
        self.handlers: dict[str, Handler] = {
            "db.pool_exhausted": self._db_pool_exhausted, "db.idle_transactions": self._db_idle_transactions,
            "db.lock_held": self._db_lock_held, "db.invalid_constraint": self._db_invalid_constraint,
            "db.slow_queries": self._db_slow_queries, "perf.disk_full": self._perf_disk_full,
            "infra.redis_down": self._infra_redis_down, "infra.postgres_down": self._infra_postgres_down,
            "infra.stream_down": self._infra_stream_down, "front.idle_timeout": self._front_idle_timeout,
            "front.rate_limit": self._front_rate_limit, "front.cert_expiring": self._front_cert_expiring,
            "infra.rules_missing": self._infra_rules_missing,
        }

    async def set(self, wanted: list[str]) -> None:
        fault_ids.validate(wanted)
        for fault in sorted(self.state.faults.active - set(wanted)):
            await self.switch(fault, False)
        for fault in wanted:
            await self.switch(fault, True)

    async def switch(self, fault: str, on: bool) -> None:
        fault_ids.validate([fault])
        async with self._lock:
            if (fault in self.state.faults.active) == on:
                return
            if on:
                self.state.faults.active.add(fault)
            handler = self.handlers.get(fault)
            if handler:
                await handler(on)
            if not on:
                self.state.faults.active.discard(fault)

    def fire_once(self, fault: str) -> None:
        """A blip: the fault acts on one request, then switches itself off."""
        fault_ids.validate([fault])
        if fault in self.handlers:
            raise SetupError(f"{fault} switches a whole server: it cannot fire once")
        self.state.faults.active.add(fault)
        self.state.faults.once.add(fault)

    async def seen_by_prometheus(self, faults: list[str], since: float) -> None:
        """Return once Prometheus sees these faults' switch (catalog `seen_by`): every target scraped since
        the switch was complete, and over the whole rate window for the faults read through rate()."""
        ways = {load_catalog().faults[f].seen_by for f in faults} - {""}
        if not ways or not self.parts.prometheus:
            return
        window_s = self.rate_window_s if "rate_window" in ways else 0.0
        if not await self.parts.prometheus_until("min(timestamp(up))", lambda t: t > since + window_s, 30 + window_s):
            raise SetupError(f"Prometheus did not scrape every target within {30 + window_s:g} s of switching "
                             f"{', '.join(faults)}")

    async def release_held(self) -> None:
        """Every connection a database fault holds, given back."""
        if self._exhausting is not None:
            self._exhausting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._exhausting
            self._exhausting = None
        held, self._held = self._held, []
        for conn in held:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _sql(self, *statements: str) -> None:
        async with await psycopg.AsyncConnection.connect(self.parts.veza_db_dsn(), autocommit=True) as conn:
            for statement in statements:
                await conn.execute(statement)

    async def _hold(self, application: str, *statements: str) -> None:
        """An outside client's connection to the platform's database, kept open after its statements."""
        conn = await psycopg.AsyncConnection.connect(self.state.app_dsn, connect_timeout=3, application_name=application)
        for statement in statements:
            await conn.execute(statement)
        self._held.append(conn)

    # -- the database ----------------------------------------------------------------------
    async def _db_pool_exhausted(self, on: bool) -> None:
        """Ordinary connections held until PostgreSQL refuses the next one, and any slot another client
        frees later taken back (a leak gives nothing back): the pool stays exhausted while the fault is on."""
        if not on:
            return await self.release_held()
        await self._hold_until_refused()
        self._exhausting = asyncio.create_task(self._keep_exhausted())

    async def _hold_until_refused(self) -> None:
        with contextlib.suppress(psycopg.OperationalError):
            while True:
                await self._hold("sandbox-pool-exhaustion")

    async def _keep_exhausted(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self._hold_until_refused()

    async def _db_idle_transactions(self, on: bool) -> None:
        """An outside client (a job that forgot to commit) holding transactions open, idle, each with an
        id of its own: the snapshot and the connection stay taken."""
        if not on:
            return await self.release_held()
        for _ in range(int(self.state.faults.param("db.idle_transactions"))):
            await self._hold("sandbox-forgotten-commit", "BEGIN", "SELECT txid_current()")

    async def _db_lock_held(self, on: bool) -> None:
        """A migration left open: an outside session holds ACCESS EXCLUSIVE on tracks, idle in its transaction."""
        if not on:
            return await self.release_held()
        await self._hold("sandbox-migration", "BEGIN", "LOCK TABLE tracks IN ACCESS EXCLUSIVE MODE")

    async def _db_invalid_constraint(self, on: bool) -> None:
        if on:
            await self._sql("ALTER TABLE playlists DROP CONSTRAINT playlists_owner_fk",
                            "INSERT INTO playlists (owner_id, name) VALUES (999999, 'orphan of a deleted user')",
                            "ALTER TABLE playlists ADD CONSTRAINT playlists_owner_fk FOREIGN KEY (owner_id) "
                            "REFERENCES users (id) NOT VALID")
        else:
            await self._sql("DELETE FROM playlists WHERE owner_id NOT IN (SELECT id FROM users)",
                            "ALTER TABLE playlists VALIDATE CONSTRAINT playlists_owner_fk")

    async def _db_slow_queries(self, on: bool) -> None:
        await self._sql("DROP INDEX IF EXISTS tracks_title_idx" if on else
                        "CREATE INDEX IF NOT EXISTS tracks_title_idx ON tracks (lower(title) text_pattern_ops)")

    # -- the servers -----------------------------------------------------------------------
    async def _perf_disk_full(self, on: bool) -> None:
        await asyncio.to_thread(up(self.parts.host).fill_data_volume,
                                self.state.faults.param("perf.disk_full") if on else None)

    async def _infra_redis_down(self, on: bool) -> None:
        redis = up(self.parts.redis)
        await asyncio.to_thread(redis.stop if on else redis.start)

    async def _infra_postgres_down(self, on: bool) -> None:
        pg = up(self.parts.pg)
        if on:
            await self.release_held()
        await asyncio.to_thread(pg.stop if on else pg.start)
        if not on:  # the backend reconnects; an operator warms the cache back up after a restart
            await up(self.parts.backend).reconnect_database()
            await up(self.parts.chat).reconnect_database()
            await self._sql("SELECT pg_prewarm(c.oid::regclass) FROM pg_class c WHERE c.relkind IN ('r', 'i') "
                            "AND c.relnamespace IN ('public'::regnamespace, 'pg_catalog'::regnamespace)")

    async def _infra_stream_down(self, on: bool) -> None:
        stream = self.parts.servers["stream"]
        await (stream.stop() if on else stream.start())

    async def _infra_rules_missing(self, on: bool) -> None:
        if self.parts.prometheus:
            self.parts.prometheus.reload(NO_RULES if on else RULES)
            await asyncio.to_thread(self.parts.prometheus.rules_loaded, not on)

    # -- the front door --------------------------------------------------------------------
    async def _front_idle_timeout(self, on: bool) -> None:
        await self._reload_door(chat_read_timeout="1s" if on else DoorSettings.chat_read_timeout)

    async def _front_rate_limit(self, on: bool) -> None:
        rate = self.state.faults.param("front.rate_limit")
        await self._reload_door(api_rate=f"{rate:g}r/s" if on else DoorSettings.api_rate,
                                api_burst=2 if on else DoorSettings.api_burst)

    async def _front_cert_expiring(self, on: bool) -> None:
        await asyncio.to_thread(up(self.parts.nginx).reissue,
                                self.state.faults.param("front.cert_expiring") if on else CERT_DAYS)
        await asyncio.sleep(RELOAD_SETTLE_S)

    async def _reload_door(self, **settings: object) -> None:
        await asyncio.to_thread(up(self.parts.nginx).reload, **settings)
        await asyncio.sleep(RELOAD_SETTLE_S)
