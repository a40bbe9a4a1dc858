"""Reads of stored jobs: by ulid (GetStatus), and pages of one queue's jobs in one state."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from jobqueue_server.ids import make_job_id
from jobqueue_server.store.decode import job_record
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.records import JobRecord, JobState

# The sorted set each listable state lives in, and whether to list it newest first.
_LISTED_ZSETS: dict[JobState, Callable[[QueueKeys], tuple[str, bool]]] = {
    JobState.SCHEDULED: lambda k: (k.scheduled, False),
    JobState.ACTIVE: lambda k: (k.active, False),
    JobState.COMPLETED: lambda k: (k.completed, True),
    JobState.DEAD: lambda k: (k.dead, True),
    JobState.CANCELLED: lambda k: (k.cancelled, True),
    JobState.WAITING: lambda k: (k.waiting, False),
}


async def read_jobs(redis: Redis, queue: str, k: QueueKeys, ulids: Sequence[str]) -> list[JobRecord | None]:
    """The jobs of `queue` with these ulids, None for each that does not exist: one HMGET per
    hash, in one MULTI so a job is never read half before and half after a transition."""
    if not ulids:
        return []
    async with redis.pipeline(transaction=True) as pipe:
        for key in (*k.hashes, k.progress, k.logs):
            pipe.hmget(key, list(ulids))
        records, wires, errors, results, progress, logs = await pipe.execute()
    jobs: list[JobRecord | None] = []
    for index, (ulid, record) in enumerate(zip(ulids, records, strict=True)):
        if record is None:
            jobs.append(None)
            continue
        job = job_record(make_job_id(queue, ulid), queue, record, wires[index], errors[index], results[index])
        job.progress, job.logs = progress[index] or b"", logs[index] or b""
        jobs.append(job)
    return jobs


async def list_page(
    redis: Redis, queue: str, k: QueueKeys, state: JobState, offset: int, limit: int
) -> tuple[list[tuple[int, JobRecord]], int]:
    """The jobs at positions offset .. offset+limit-1 of a state, each with its position, and
    how many are in that state. A job deleted between the two reads is left out.

    Queued jobs come in lease order, scheduled by due time, active by deadline, finished
    ones newest first. Pages are by position (the structures are read, not locked).
    """
    if state == JobState.QUEUED:
        ulids, total = await _queued_page(redis, k, offset, limit)
    else:
        key, newest_first = _LISTED_ZSETS[state](k)
        total = int(await redis.zcard(key))
        fetch = redis.zrevrange if newest_first else redis.zrange
        ulids = [u.decode() for u in await fetch(key, offset, offset + limit - 1)]
    jobs = await read_jobs(redis, queue, k, ulids)
    return [(offset + index, job) for index, job in enumerate(jobs) if job is not None], total


async def count_in_state(redis: Redis, k: QueueKeys, state: JobState) -> int:
    """How many jobs a state holds: the total a page of it reports."""
    if state == JobState.QUEUED:
        async with redis.pipeline(transaction=False) as pipe:
            for key in k.ready:
                pipe.llen(key)
            pipe.get(k.grouped_ready)
            *lengths, grouped = await pipe.execute()
        return sum(int(n) for n in lengths) + int(grouped or 0)
    key, _ = _LISTED_ZSETS[state](k)
    return int(await redis.zcard(key))


async def _queued_page(redis: Redis, k: QueueKeys, offset: int, limit: int) -> tuple[list[str], int]:
    """Ready jobs: those of the ready lists in lease order (high, normal, low; within a list
    from its right end), then the grouped ones, group by group in the order of their names,
    each group's in its lease order."""
    lengths = [int(await redis.llen(key)) for key in k.ready]
    ulids: list[str] = []
    for key, length in zip(k.ready, lengths, strict=True):
        if offset >= length:
            offset -= length
            continue
        take = min(limit - len(ulids), length - offset)
        chunk = await redis.lrange(key, -(offset + take), -(offset + 1))
        ulids += [u.decode() for u in reversed(chunk)]
        offset = 0
        if len(ulids) >= limit:
            break
    grouped = int(await redis.get(k.grouped_ready) or 0)
    if grouped and len(ulids) < limit:
        ulids += await _grouped_page(redis, k, offset, limit - len(ulids))
    return ulids, sum(lengths) + grouped


async def _grouped_page(redis: Redis, k: QueueKeys, offset: int, limit: int) -> list[str]:
    """Grouped ready jobs from position `offset`: the groups with ready jobs are those of the
    ring and the held set (one ZCARD each: the cost grows with the groups, not the jobs)."""
    names = sorted(
        {g.decode() for g in await redis.zrange(k.group_ring, 0, -1)}
        | {g.decode() for g in await redis.zrange(k.group_blocked, 0, -1)}
    )
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.zcard(k.group_ready_prefix + name)
        sizes = await pipe.execute()
    ulids: list[str] = []
    for name, size in zip(names, sizes, strict=True):
        if offset >= size:
            offset -= size
            continue
        chunk = await redis.zrange(k.group_ready_prefix + name, offset, offset + limit - len(ulids) - 1)
        ulids += [u.decode() for u in chunk]
        offset = 0
        if len(ulids) >= limit:
            break
    return ulids
