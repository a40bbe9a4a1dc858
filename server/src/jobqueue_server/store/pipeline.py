"""One pipelined Redis connection for the scripts on the hot paths (enqueue, lease, settle).

redis-py's asyncio client spends about 120 µs of CPU on each command here (a connection taken
from the pool and given back, arguments encoded in Python, a parser per reply); this connection
spends about 30 µs: hiredis packs the command and parses the reply in C, and every caller writes
to the same socket without waiting for the others, each awaiting its own reply in order (Redis
answers one connection's commands in the order they came). docs/performance.md has the figures.

Failures look like redis-py's (ConnectionError, ResponseError, OutOfMemoryError), so the store
maps them as it maps redis-py's. Calls are bounded in time here, without a timer per call: while
replies are due, a check runs a few times per timeout, and a connection that has answered nothing
for longer than the timeout while a reply is due is dropped: its calls fail with
ConnectionError, and the next call opens a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, cast

import hiredis
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection


class _Protocol(asyncio.Protocol):
    """Writes commands and resolves the waiting futures in order as replies arrive."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        # Each waiting caller's future, with when its command was sent (loop time).
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.last_reply = asyncio.get_running_loop().time()
        self._watching = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have the same methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        self.last_reply = asyncio.get_running_loop().time()
        while (reply := self._reader.gets()) is not False:
            future, _ = self.waiting.popleft()
            if not future.done():  # a caller that timed out or was cancelled is no longer waiting
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = redis_errors.ConnectionError(f"connection to redis lost: {exc or 'closed'}")
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.lost is not None or self.transport is None:
            future.set_exception(self.lost or redis_errors.ConnectionError("not connected"))
            return future
        self.waiting.append((future, loop.time()))
        self.transport.write(command)
        return future

    def watch(self, timeout_s: float) -> None:
        """Drops the connection if it stalls; re-armed while replies are due."""
        self._watching = False
        if self.lost is not None or self.transport is None:
            return
        if self.stalled(timeout_s):
            self.transport.abort()  # connection_lost fails the waiting calls
        elif self.waiting:
            self.arm(timeout_s)

    def arm(self, timeout_s: float) -> None:
        if not self._watching:
            self._watching = True
            asyncio.get_running_loop().call_later(timeout_s / 4, self.watch, timeout_s)

    def stalled(self, timeout_s: float) -> bool:
        """Whether a reply has been due for longer than `timeout_s` with nothing received."""
        if not self.waiting:
            return False
        now = asyncio.get_running_loop().time()
        return now - self.waiting[0][1] > timeout_s and now - self.last_reply > timeout_s


def _pack(parts: tuple[Any, ...]) -> bytes:
    """A command in RESP, packed by hiredis in C."""
    packed: bytes = hiredis.pack_command(parts)
    return packed


def _raise_for(reply: Any) -> Any:
    if isinstance(reply, hiredis.ReplyError):
        text = str(reply)
        if text.startswith("OOM"):
            raise redis_errors.OutOfMemoryError(text)
        if text.startswith("NOSCRIPT"):
            raise redis_errors.NoScriptError(text)
        if text.startswith("READONLY"):
            raise redis_errors.ReadOnlyError(text)
        raise redis_errors.ResponseError(text)
    return reply


class ScriptCalls(Protocol):
    """What the store's scripts are called through: a ScriptPipeline, or one per cluster node."""

    async def evalsha(
        self,
        sha: str,
        source: str,
        keys: Sequence[str],
        args: Sequence[Any],
        sent: Callable[[], object] | None = None,
    ) -> Any: ...

    def evalsha_now(
        self, sha: str, source: str, keys: Sequence[str], args: Sequence[Any]
    ) -> Awaitable[Any]: ...

    async def aclose(self) -> None: ...


class ScriptPipeline:
    """EVALSHA on one shared connection, made like `redis`'s own (address, password, TLS)."""

    def __init__(self, redis: Redis, timeout_s: float) -> None:
        pool = redis.connection_pool
        self._setup(pool.connection_kwargs, issubclass(pool.connection_class, SSLConnection), timeout_s)
        # Behind Sentinel the pool knows no address: it asks the sentinels at each connect.
        self._primary_address: Callable[[], Awaitable[tuple[str, int]]] | None = getattr(
            pool, "get_master_address", None
        )

    @classmethod
    def for_address(cls, kwargs: Mapping[str, Any], timeout_s: float) -> ScriptPipeline:
        """One to the node `kwargs` names (host, port, credentials, ssl), as a cluster has several."""
        pipeline = cls.__new__(cls)
        pipeline._setup(kwargs, bool(kwargs.get("ssl")), timeout_s)
        return pipeline

    def _setup(self, kwargs: Mapping[str, Any], tls: bool, timeout_s: float) -> None:
        self._primary_address = None
        self._kwargs: Mapping[str, Any] = kwargs
        self._tls = tls
        self._timeout_s = timeout_s
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def evalsha(
        self,
        sha: str,
        source: str,
        keys: Sequence[str],
        args: Sequence[Any],
        sent: Callable[[], object] | None = None,
    ) -> Any:
        """Runs the script by its SHA1; loads it first when Redis does not know it (a restart).

        `sent()` runs each time the call is written: a command written on this connection after
        that point runs after the script in Redis, whatever the script's reply."""
        command = _pack(("EVALSHA", sha, len(keys), *keys, *args))
        try:
            return await self._call(command, sent)
        except redis_errors.NoScriptError:
            await self._call(_pack(("SCRIPT", "LOAD", source)))
            return await self._call(command, sent)

    def evalsha_now(self, sha: str, source: str, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """`evalsha`, but written before this returns when the connection is up (not when the
        result is first awaited): from a callback, the call goes out right behind what was
        written just before it, and Redis takes both in one wake-up."""
        command = _pack(("EVALSHA", sha, len(keys), *keys, *args))
        protocol = self._usable()
        if protocol is None:
            return self.evalsha(sha, source, keys, args)  # connects first
        return self._reply_or_reload(command, source, self._send(protocol, command))

    async def _reply_or_reload(self, command: bytes, source: str, reply: asyncio.Future[Any]) -> Any:
        try:
            return _raise_for(await reply)
        except redis_errors.NoScriptError:
            await self._call(_pack(("SCRIPT", "LOAD", source)))
            return await self._call(command)

    async def _call(self, command: bytes, sent: Callable[[], object] | None = None) -> Any:
        protocol = self._usable() or await self._connect()
        reply = self._send(protocol, command)
        if sent is not None:
            sent()
        try:
            return _raise_for(await reply)
        except redis_errors.ReadOnlyError as exc:
            # A primary demoted after a failover: nothing was written here. The next call
            # connects again, to wherever the primary is now (Sentinel).
            self._drop(protocol)
            raise redis_errors.ConnectionError(f"redis is a replica now: {exc}") from exc

    def _usable(self) -> _Protocol | None:
        """The open connection, unless there is none or it stopped answering (a dead peer, a
        cut network would hold every later command behind a reply that never comes)."""
        protocol = self._protocol
        if protocol is not None and protocol.stalled(self._timeout_s):
            self._drop(protocol)
            return None
        if protocol is None or protocol.lost is not None:
            return None
        return protocol

    def _send(self, protocol: _Protocol, command: bytes) -> asyncio.Future[Any]:
        reply = protocol.send(command)
        protocol.arm(self._timeout_s)
        return reply

    def _drop(self, protocol: _Protocol) -> None:
        if protocol.transport is not None:
            protocol.transport.abort()
        if self._protocol is protocol:
            self._protocol = None

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # concurrent callers share one new connection
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            protocol = await asyncio.wait_for(self._open(), self._timeout_s)
            self._protocol = protocol
            return protocol

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        kwargs = self._kwargs
        try:
            if kwargs.get("path"):
                _, protocol = await loop.create_unix_connection(_Protocol, kwargs["path"])
            else:
                host, port = kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))
                if self._primary_address is not None:
                    host, port = await self._primary_address()
                _, protocol = await loop.create_connection(_Protocol, host, port, ssl=self._ssl_context())
        except OSError as exc:
            raise redis_errors.ConnectionError(f"cannot connect to redis: {exc}") from exc
        try:
            await self._hello(protocol)
        except BaseException:
            self._drop(protocol)  # refused (a wrong password) or timed out: close what was opened
            raise
        return protocol

    async def _hello(self, protocol: _Protocol) -> None:
        kwargs = self._kwargs
        if kwargs.get("password"):
            credentials = (
                [kwargs["username"], kwargs["password"]] if kwargs.get("username") else [kwargs["password"]]
            )
            _raise_for(await protocol.send(_pack(("AUTH", *credentials))))
        if int(kwargs.get("db") or 0):
            _raise_for(await protocol.send(_pack(("SELECT", int(kwargs["db"])))))

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self._tls:
            return None
        kwargs = self._kwargs
        context = ssl.create_default_context(cafile=kwargs.get("ssl_ca_certs"))
        if kwargs.get("ssl_certfile"):
            context.load_cert_chain(kwargs["ssl_certfile"], kwargs.get("ssl_keyfile"))
        if kwargs.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.check_hostname = bool(kwargs.get("ssl_check_hostname", True))
        return context

    async def aclose(self) -> None:
        if self._protocol is not None:
            self._drop(self._protocol)


# One pipeline per redis-py client (so per process and Redis), whatever the number of stores.
_PIPELINES: weakref.WeakKeyDictionary[Redis, ScriptPipeline] = weakref.WeakKeyDictionary()


def pipeline_of(redis: Redis, timeout_s: float) -> ScriptPipeline:
    """The scripts' pipeline made from `redis`'s settings; closed with it (see ClosingRedis)."""
    pipeline = _PIPELINES.get(redis)
    if pipeline is None:
        pipeline = _PIPELINES[redis] = ScriptPipeline(redis, timeout_s)
    return pipeline


class ClosingRedis(Redis):
    """A redis-py client whose `aclose` also closes the scripts' pipeline made from it."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        pipeline = _PIPELINES.pop(self, None)
        if pipeline is not None:
            await pipeline.aclose()
        await super().aclose(close_connection_pool)
