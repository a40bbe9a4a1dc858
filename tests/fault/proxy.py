"""A TCP proxy the fault harness controls: forwards bytes, cuts connections, or stalls them.

One proxy sits between each server and Valkey and between each worker and the servers.
`cut()` aborts every connection through it (both sides see a reset, as when a process or a
link dies); `stall(s)` stops forwarding for `s` seconds while keeping the sockets open (the
realistic partition: the peer's writes pile up in kernel buffers and nothing answers).

The upstreams are an ordered list: a new connection goes to the first one that accepts,
so a worker's proxy fails over to another server while its own is down, the way a load
balancer would. Servers restart on new ports and the harness updates the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
CHUNK = 256 * 1024
CONNECT_TIMEOUT_S = 1.0

Address = tuple[str, int]


class _Pair:
    """One proxied connection: the accepted socket, its upstream, the two pumps between them."""

    def __init__(self, writers: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        self.writers = writers
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        # abort(), not close(): a cut must look like a crash (RST), not a polite FIN.
        for writer in self.writers:
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class Proxy:
    """Listens on 127.0.0.1 (a port the OS picks) and forwards to the first upstream that accepts."""

    def __init__(self, name: str, upstreams: Sequence[Address]) -> None:
        self.name = name
        self.upstreams = list(upstreams)
        self.port = 0
        self.cuts = 0
        self.stalls = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._pairs: set[_Pair] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._closing = False

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> int:
        """Aborts every open connection; returns how many there were. New ones are accepted."""
        pairs = list(self._pairs)
        for pair in pairs:
            pair.abort()
        self._pairs.clear()
        self.cuts += 1
        return len(pairs)

    async def stall(self, seconds: float) -> None:
        """Stops forwarding (and connecting) for `seconds`, sockets kept open."""
        self.stalls += 1
        self._flowing.clear()
        try:
            await asyncio.sleep(seconds)
        finally:
            self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._closing = True
        self._flowing.set()
        self.cut()
        # Not cancelled: asyncio's streams log a cancelled connection handler as an error
        # (3.11). Aborted sockets end them within a connect timeout at most.
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # -- per connection --------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._flowing.wait()  # a stalled link accepts, but nothing gets through
            upstream = await self._connect()
            if upstream is not None and self._closing:
                upstream[1].transport.abort()
                upstream = None
            if upstream is None:
                writer.transport.abort()
                return
            await self._forward(reader, writer, *upstream)
        finally:
            self._handlers.discard(task)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for host, port in list(self.upstreams):
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    return await asyncio.open_connection(host, port)
        logger.debug("proxy %s: no upstream accepted", self.name)
        return None

    async def _forward(
        self,
        down_reader: asyncio.StreamReader,
        down_writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        pair = _Pair((down_writer, up_writer))
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(down_reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, down_writer)),
        ]
        try:
            # When one direction ends (EOF or error), the connection is over for both.
            await asyncio.wait(pair.tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pairs.discard(pair)
            pair.abort()
            await asyncio.gather(*pair.tasks, return_exceptions=True)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(CHUNK):
                if not self._flowing.is_set():
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()
