"""A small asyncio TCP proxy (no toxiproxy or netem here): delays new connections on demand."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .processes import LOOPBACK, free_port


class DelayProxy:
    def __init__(self, upstream_port: int, connect_delay_s: Callable[[], float]):
        self.upstream_port = upstream_port
        self.connect_delay_s = connect_delay_s
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, self.port or free_port())
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        delay = self.connect_delay_s()
        if delay:
            await asyncio.sleep(delay)
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(LOOPBACK, self.upstream_port), 5)
        except (TimeoutError, OSError):
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, up_writer), self._pipe(up_reader, client_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
