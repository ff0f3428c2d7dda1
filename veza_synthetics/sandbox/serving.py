"""Serve an ASGI app with uvicorn inside the sandbox's event loop, stoppable and restartable; the
servers' PostgreSQL pools."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp

from .processes import LOOPBACK, free_port


class _QuietServer(uvicorn.Server):
    """The sandbox process owns the signals; several servers share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AppServer:
    def __init__(self, name: str, app: ASGIApp, port: int = 0):
        self.name = name
        self.app = app
        self.port = port
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
        sock.bind((LOOPBACK, self.port or free_port()))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="critical", access_log=False, lifespan="off",
                                date_header=False, timeout_graceful_shutdown=1,
                                ws_ping_interval=None,  # the backend's own chat never pings (C6)
                                # longer than the front door keeps an idle upstream connection (nginx: 60 s), as
                                # Go's server does: uvicorn's 5 s closed connections nginx was reusing (a 502)
                                timeout_keep_alive=75)
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, 5)
        self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


async def open_pool(dsn: str, min_size: int, max_size: int, **connect: object) -> AsyncConnectionPool:
    """A server's pool of application connections, full before the server answers."""
    pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, timeout=2, open=False,
                               check=AsyncConnectionPool.check_connection, kwargs={"connect_timeout": 2, **connect})
    await pool.open(wait=True, timeout=10)
    return pool


async def renew_pool(old: AsyncConnectionPool | None, dsn: str, min_size: int, max_size: int,
                     **connect: object) -> AsyncConnectionPool:
    """After PostgreSQL comes back: a fresh pool at once, as a Go server's database/sql reconnects on the
    next query (psycopg's pool would otherwise wait out its growing reconnect backoff)."""
    pool = await open_pool(dsn, min_size, max_size, **connect)
    if old is not None:
        await old.close(timeout=2)
    return pool
