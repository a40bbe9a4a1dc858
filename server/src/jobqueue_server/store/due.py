"""Cheap reads for the maintenance pass: which queues have work due, and which have ready jobs.

A pass used to run three scripts on every known queue every second, most of them to find there
was nothing to do. These reads look first, in one round trip for all queues (plain commands,
no script), so a pass over idle queues costs a few cheap commands each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from jobqueue_server.store.keys import QueueKeys


@dataclass(frozen=True, slots=True)
class Due:
    """One queue's maintenance: whether a sweep has work now, and when it next will."""

    now: bool
    next_ms: int | None
    #: Whether the queue holds no job at all (read only when asked for).
    empty: bool = False


def _first_score(reply: list[tuple[bytes, float]]) -> int | None:
    return int(reply[0][1]) if reply else None


async def due_work(
    redis: Redis,
    keys_of: Callable[[str], QueueKeys],
    queues: Sequence[str],
    now_ms: int,
    retention_ms: int,
    *,
    sizes: bool = False,
) -> dict[str, Due]:
    """For each queue: its earliest scheduled job, lease deadline, start deadline and finished
    job, read with ZRANGE 0 0 (the head of each sorted set) in one pipeline; with `sizes`,
    whether it is empty."""
    reads = 7 if sizes else 6
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            k = keys_of(queue)
            for key in (k.scheduled, k.active, k.expiring, k.completed, k.dead, k.cancelled):
                pipe.zrange(key, 0, 0, withscores=True)
            if sizes:
                pipe.hlen(k.jobs)
        replies = await pipe.execute()
    found = {}
    for index, queue in enumerate(queues):
        mine = replies[index * reads : (index + 1) * reads]
        scheduled, active, expiring, *finished = (_first_score(r) for r in mine[:6])
        times = [t for t in (scheduled, active, expiring) if t is not None]
        times += [t + retention_ms for t in finished if t is not None]
        later = [t for t in times if t > now_ms]
        empty = sizes and int(mine[6]) == 0
        found[queue] = Due(now=any(t <= now_ms for t in times), next_ms=min(later, default=None), empty=empty)
    return found


async def with_ready_jobs(
    redis: Redis, keys_of: Callable[[str], QueueKeys], queues: Sequence[str]
) -> list[str]:
    """The queues among `queues` whose ready lists hold a job and that are not paused (two
    EXISTS each, one round trip): waking streams for a paused queue would cost each an empty
    lease call per pass."""
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            k = keys_of(queue)
            pipe.exists(*k.ready)
            pipe.exists(k.paused)
        counts = await pipe.execute()
    return [queue for i, queue in enumerate(queues) if counts[2 * i] and not counts[2 * i + 1]]
