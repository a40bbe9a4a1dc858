"""Partitioned queues: how many partitions each queue has, and which partition a job goes to.

A queue with P partitions is stored as P queues: the queue itself (partition 0) and
`<queue>~1` … `<queue>~<P-1>`, each with its own hash tag, so on a cluster they spread over
the nodes. The counts live in one hash in a slot of its own; every server keeps a copy,
read at start and on each maintenance pass, and right away on the server that changed it.
A server that has not seen a new partition yet only leaves it out of its choices for a
moment: jobs are never moved, so nothing is lost either way (docs/scaling.md).
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from dataclasses import replace

from redis.asyncio import Redis

from jobqueue_server.ids import MAX_PARTITIONS, partition_name
from jobqueue_server.store.records import QueueCounts, QueueLimits
from jobqueue_server.store.scripts import Script


def partitions_key(prefix: str) -> str:
    """queue -> partition count, for the queues with more than one."""
    return f"{prefix}:{{~partitions}}"


class Partitions:
    """This server's copy of the partition counts."""

    def __init__(self, redis: Redis, prefix: str, grow_script: Script) -> None:
        self._redis = redis
        self._key = partitions_key(prefix)
        self._grow = grow_script
        self._counts: dict[str, int] = {}
        self._turns: dict[str, Iterator[int]] = {}
        #: Goes up at each change of the counts: a Lease stream then watches the partitions again.
        self.version = 0

    def count(self, queue: str) -> int:
        return self._counts.get(queue, 1)

    def names(self, queue: str) -> list[str]:
        """Where `queue`'s jobs are stored: one name per partition, partition 0 first."""
        count = self._counts.get(queue, 1)
        return [queue] if count == 1 else [partition_name(queue, i) for i in range(count)]

    def partitioned(self) -> dict[str, int]:
        return dict(self._counts)

    def pick(self, queue: str, key: str) -> str:
        """The partition a job of `queue` goes to: the one `key` hashes to (CRC-32, the same on
        every server), or with no key the next in turn."""
        count = self._counts.get(queue, 1)
        if count == 1:
            return queue
        if key:
            return partition_name(queue, zlib.crc32(key.encode()) % count)
        turn = self._turns.get(queue)
        if turn is None:
            turn = self._turns[queue] = itertools.cycle(range(count))
        return partition_name(queue, next(turn))

    async def refresh(self) -> list[str]:
        """Reads the counts again; returns the queues whose count changed. Counts only grow: one
        the store lacks or holds lower (it lost data: a restart without persistence, a failover
        to a replica behind) is written back, or the jobs of the partitions beyond it would
        never be leased by the servers that read it."""
        stored = await self._redis.hgetall(self._key)
        counts = {k.decode(): min(int(v), MAX_PARTITIONS) for k, v in stored.items()}
        for queue, count in self._counts.items():
            if counts.get(queue, 1) < count:
                await self.grow(queue, count)
                counts[queue] = count
        return self._apply(counts)

    async def grow(self, queue: str, partitions: int) -> tuple[int, int]:
        """Sets `queue`'s count to `partitions` unless it has more; returns (before, now)."""
        before, now = await self._grow(keys=[self._key], args=[queue, partitions])
        self._apply({**self._counts, queue: int(now)})
        return int(before) or 1, int(now)

    def _apply(self, counts: dict[str, int]) -> list[str]:
        counts = {queue: count for queue, count in counts.items() if count > 1}
        changed = [
            queue
            for queue in counts.keys() | self._counts.keys()
            if counts.get(queue) != self._counts.get(queue)
        ]
        for queue in changed:
            self._turns.pop(queue, None)
        if changed:
            self.version += 1
        self._counts = counts
        return changed


def split_limits(limits: QueueLimits, count: int) -> list[QueueLimits]:
    """Each partition's share of a queue's limits: the rate, burst and running jobs divided
    among the partitions (their sum is the queue's), the group limits whole (a group's jobs
    are all in one partition). A share is enforced by its partition alone, so a queue whose
    jobs sit in some partitions only runs below its limits (docs/scaling.md)."""
    if count == 1:
        return [limits]
    return [
        replace(
            limits,
            rate_per_second=limits.rate_per_second / count,
            burst=_share(limits.burst, count, index),
            max_active=_share(limits.max_active, count, index),
        )
        for index in range(count)
    ]


def _share(total: int, count: int, index: int) -> int:
    """Partition `index`'s whole share of `total`: the shares add up to it; 0 (no limit) stays
    0 everywhere. A partition never gets 0 of a limit (that would mean none): a total below
    the count is refused first (CreateQueue, SetQueueLimits)."""
    return total // count + (1 if index < total % count else 0)


def merge_counts(queue: str, parts: list[QueueCounts]) -> QueueCounts:
    """One queue's counts from its partitions' (partition 0 first)."""
    if len(parts) == 1:
        return replace(parts[0], queue=queue)
    shares = [part.limits for part in parts if part.limits is not None]
    limits = None
    if shares:
        limits = replace(
            shares[0],
            rate_per_second=sum(share.rate_per_second for share in shares),
            burst=sum(share.burst for share in shares),
            max_active=sum(share.max_active for share in shares),
        )
    return QueueCounts(
        queue,
        sum(part.queued for part in parts),
        sum(part.scheduled for part in parts),
        sum(part.active for part in parts),
        sum(part.completed for part in parts),
        sum(part.dead for part in parts),
        sum(part.cancelled for part in parts),
        max(part.oldest_queued_age_ms for part in parts),
        parts[0].paused,
        limits,
        sum(part.waiting for part in parts),
        len(parts),
    )
