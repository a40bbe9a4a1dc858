"""The upgrade from the previous layout: jobs stored one hash per job (format 1) move into their
queue's hashes (format 2, layout.py), once per Redis, when a server starts and before it serves.

`<prefix>:format` records that it is done, so later starts read one key and scan nothing. Until
then every starting server scans for hashes of format 1 (in bounded batches) and moves them with
migrate-4.lua, which moves each job whole in one call and skips a job whose hash is gone: two
servers starting at once move each job once. A job stored before wire bytes existed gets them
built here, by the function the caller passes (the api layer's serializer: the store never
imports protobuf). Servers of the previous version must be stopped first (docs/state-machine.md):
they would go on writing hashes of format 1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from redis.asyncio import Redis

from jobqueue_server.ids import make_job_id
from jobqueue_server.store.cluster import is_cluster
from jobqueue_server.store.decode import legacy_record
from jobqueue_server.store.guard import redis_errors
from jobqueue_server.store.keys import QueueKeys, format_key, queues_set
from jobqueue_server.store.layout import FORMAT
from jobqueue_server.store.records import JobRecord
from jobqueue_server.store.scripts import Script

logger = logging.getLogger(__name__)

#: Builds the wire bytes of a job stored before they existed (JobRecord.legacy holds its hash).
BuildWire = Callable[[JobRecord], bytes]
#: Keys asked of each SCAN step, and so the most jobs moved per script call.
BATCH = 500
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


class LayoutTooNew(RuntimeError):
    """Redis holds jobs in a layout newer than this server writes: it must not touch them."""


@dataclass(slots=True)
class Migration:
    """What one server's migration did."""

    #: False when nothing had to be looked at: the marker was set, or no queue was ever used.
    scanned: bool = False
    moved: int = 0
    #: Jobs moved that were stored before wire bytes existed: their wire bytes were built here.
    built: int = 0
    #: Jobs another server moved first.
    gone: int = 0
    #: Jobs left in place (their wire bytes could not be built): the next start tries again.
    failed: int = 0


async def migrate(
    redis: Redis,
    script: Script,
    prefix: str,
    build_wire: BuildWire,
    timeout_s: float,
    batch: int = BATCH,
) -> Migration:
    """Moves every job of format 1 under `prefix`, then sets the format marker. Each exchange
    with Redis is bounded by `timeout_s` (the whole migration is not: it may take minutes)."""
    return await _Migration(redis, script, prefix, build_wire, timeout_s).run(batch)


class _Migration:
    def __init__(self, redis: Redis, script: Script, prefix: str, build_wire: BuildWire, timeout_s: float):
        self.redis, self.script, self.prefix, self.build_wire = redis, script, prefix, build_wire
        self.timeout_s = timeout_s
        self.done = Migration()

    def _bounded(self) -> AbstractAsyncContextManager[None]:
        return redis_errors(self.timeout_s)

    async def run(self, batch: int) -> Migration:
        marker, done = format_key(self.prefix), self.done
        async with self._bounded():
            stored = await self.redis.get(marker)
            # Jobs were enqueued to queues of the queues set: without it there are none, and
            # nothing is written (a start on an empty Redis leaves no key).
            used = await self.redis.exists(queues_set(self.prefix))
        if stored is not None and int(stored) > FORMAT:
            raise LayoutTooNew(
                f"{marker} is {int(stored)}: jobs stored by a newer version (this one: {FORMAT})"
            )
        if stored is not None or not used or is_cluster(self.redis):
            # A cluster holds no job of format 1: no version that wrote it could use one.
            return done
        done.scanned = True
        pattern = _GLOB_SPECIAL.sub(r"\\\1", self.prefix) + ":{*}:job:*"
        cursor = None
        while cursor != 0:
            async with self._bounded():
                cursor, keys = await self.redis.scan(cursor or 0, match=pattern, count=batch)
            for queue, ulids in _by_queue(self.prefix, keys).items():
                await self._move(QueueKeys.of(self.prefix, queue), queue, ulids)
        if done.failed:
            logger.error(
                "store: %d jobs of the previous layout not moved; the next start retries", done.failed
            )
        else:
            async with self._bounded():
                await self.redis.set(marker, FORMAT)
        if done.moved or done.gone:
            logger.info(
                "store: moved %d jobs of the previous layout (%d with wire bytes built; %d by another)",
                done.moved,
                done.built,
                done.gone,
            )
        return done

    async def _move(self, k: QueueKeys, queue: str, ulids: list[str]) -> None:
        built = await self._built_wires(k, queue, ulids)
        args: list[str | bytes | int] = [k.job_prefix, len(ulids)]
        for ulid in ulids:
            args += [ulid, built.get(ulid, b"")]
        async with self._bounded():
            moved, built_used, gone, *left = await self.script(keys=list(k.hashes), args=args)
        self.done.moved += int(moved)
        self.done.built += int(built_used)
        self.done.gone += int(gone)
        self.done.failed += len(left)

    async def _built_wires(self, k: QueueKeys, queue: str, ulids: list[str]) -> dict[str, bytes]:
        """Wire bytes for the jobs among `ulids` whose hash has none (stored before they existed).

        Built from fields that never change after enqueue, so reading them before the script runs
        is safe. A job whose wire bytes cannot be built gets none: the script leaves it in place.
        """
        async with self._bounded(), self.redis.pipeline(transaction=False) as pipe:
            for ulid in ulids:
                pipe.hexists(k.job(ulid), "wire")
            has_wire = await pipe.execute()
        bare = [ulid for ulid, has in zip(ulids, has_wire, strict=True) if not has]
        if not bare:
            return {}
        async with self._bounded(), self.redis.pipeline(transaction=False) as pipe:
            for ulid in bare:
                pipe.hgetall(k.job(ulid))
            hashes = await pipe.execute()
        built = {}
        for ulid, fields in zip(bare, hashes, strict=True):
            if not fields:
                continue  # moved by another server meanwhile: the script counts it
            job_id = make_job_id(queue, ulid)
            try:
                built[ulid] = self.build_wire(legacy_record(job_id, queue, fields))
            except Exception:  # a hash this server cannot read: logged, left, tried at the next start
                logger.exception("store: cannot build the wire bytes of job %s", job_id)
        return built


def _by_queue(prefix: str, keys: Sequence[bytes]) -> dict[str, list[str]]:
    """`<prefix>:{<queue>}:job:<ulid>` keys as ulids by queue (queue names hold no brace)."""
    found: dict[str, list[str]] = {}
    start = len(prefix) + 2
    for raw in keys:
        key = raw.decode()
        queue, sep, ulid = key[start:].partition("}:job:")
        if sep and "{" not in queue and "}" not in queue:
            found.setdefault(queue, []).append(ulid)
    return found
