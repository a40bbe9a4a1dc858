"""The fsynced durability level: can this Redis confirm writes on disk, and WAITAOF itself.

`WAITAOF numlocal numreplicas timeout` waits until every write *of the connection it is
sent on* is fsynced to the local append-only file. So a fsynced call takes one connection
from the pool for itself, runs its scripts on it, then sends WAITAOF on it. (WAITAOF inside
the script would not help: there it does not block, it only reports counts.)

The capability is checked at start and cached while it holds; while it does not (or after
a confirmation failed), every fsynced request checks again (a few cheap commands), so
turning the AOF on or upgrading Redis needs no restart of the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from jobqueue_server.errors import DurabilityUnavailable, FsyncNotConfirmed
from jobqueue_server.store.cluster import is_cluster

#: WAITAOF's arguments: wait for the local AOF (1), and for no replica (0).
LOCAL_AOF = 1
NO_REPLICAS = 0
#: The probe's timeout, ms. With numlocal 0 WAITAOF answers at once; 0 would mean "forever".
PROBE_TIMEOUT_MS = 1


async def fsync_problem(redis: Redis) -> str | None:
    """Why this Redis cannot provide DURABILITY_FSYNCED, or None when it can."""
    if is_cluster(redis):
        # WAITAOF confirms the writes of its own connection, on one node: a cluster would need it
        # on each node a call wrote to.
        return "a Redis Cluster cannot confirm writes on disk here yet; use DURABILITY_APPLIED"
    try:
        # A probe rather than COMMAND INFO WAITAOF: redis-py's parser for COMMAND INFO
        # fails on the nil entry Redis returns for an unknown command, and the probe also
        # catches an ACL that denies WAITAOF. numlocal 0 makes it independent of the AOF.
        await redis.waitaof(0, NO_REPLICAS, PROBE_TIMEOUT_MS)
    except redis_errors.ResponseError as exc:
        return f"{await _server_version(redis)} cannot run WAITAOF ({exc}); it needs Redis 7.2+ or Valkey 8+"
    if await _config(redis, "appendonly") == "no":
        return "the append-only file is off on this Redis (appendonly no); set appendonly yes"
    if await _config(redis, "appendfsync") == "no":
        # Redis then leaves fsync to the OS and WAITAOF never confirms: every call would time out.
        return "this Redis never fsyncs its append-only file (appendfsync no); set everysec or always"
    return None


async def _server_version(redis: Redis) -> str:
    try:
        info = await redis.info("server")
    except redis_errors.ResponseError:
        return "this Redis"
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    return f"Redis {info.get('redis_version', '(unknown version)')}"


async def _config(redis: Redis, name: str) -> str | None:
    """A CONFIG GET value, or None where CONFIG is renamed or denied (hosted Redis)."""
    try:
        reply = await redis.config_get(name)
    except redis_errors.ResponseError:
        return None
    value = reply.get(name, reply.get(name.encode()))
    return value.decode() if isinstance(value, bytes) else value


class FsyncGate:
    """Hands out connections for fsynced writes and confirms each write on disk."""

    def __init__(self, redis: Redis, timeout_ms: int) -> None:
        self._redis = redis
        self._timeout_ms = timeout_ms
        self._available = False  # known to work; checked again on each request while not

    async def check(self) -> str | None:
        """Checks the capability now; returns why it is missing, or None."""
        problem = await fsync_problem(self._redis)
        self._available = problem is None
        return problem

    async def _require(self) -> None:
        if self._available:
            return
        problem = await self.check()
        if problem is not None:
            raise DurabilityUnavailable(f"durability FSYNCED refused, nothing was written: {problem}")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Redis]:
        """A connection of this call's own; when the body ends without an error, returns
        only once the writes made on it are fsynced to the AOF."""
        await self._require()  # before any write: a refused request changes nothing
        async with self._redis.client() as connection:
            yield connection
            await self._wait(connection)

    async def _wait(self, connection: Redis) -> None:
        try:
            local, _ = await connection.waitaof(LOCAL_AOF, NO_REPLICAS, self._timeout_ms)
        except redis_errors.ResponseError as exc:
            # The AOF was turned off (or Redis replaced) since the check: check again next time.
            self._available = False
            raise FsyncNotConfirmed(
                f"the write was applied but Redis cannot confirm it on disk ({exc}); "
                "it may not survive a power loss"
            ) from exc
        if int(local) < LOCAL_AOF:
            # A slow disk, or appendfsync turned to `no` (then WAITAOF never confirms):
            # check again next time, so the latter is refused at once instead of waiting.
            self._available = False
            raise FsyncNotConfirmed(
                f"the write was applied but not confirmed on disk within {self._timeout_ms} ms; "
                "it may or may not survive a power loss"
            )
