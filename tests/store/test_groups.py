"""Groups under random operations: enqueues with and without groups, leases, acks, fails, released
streams, cancels, retries, expired leases and promotions, with group limits that change. After
every step the group bookkeeping agrees with the job records: each QUEUED grouped job is in its
group's set and nowhere else, `gqueued` counts them, a group with ready jobs is in the ring or held
(never both), `gactive` counts each group's ACTIVE jobs, and Stats counts every ready job."""

from __future__ import annotations

import contextlib
import random
from collections import Counter

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost, WrongState
from jobqueue_server.store import JobState, NewJob, Priority, QueueLimits, Settle, Store
from tests.store.helpers import raw_jobs, zset

GROUPS = ["a", "b", "c", ""]


async def _check(redis: Redis, store: Store, ulids: list[str], *, paged: bool) -> None:
    k = store.keys("q")
    jobs = await raw_jobs(redis, k, ulids)
    group_of = {u.decode(): g.decode() for u, g in (await redis.hgetall(k.group_of)).items()}
    prefix = k.group_of.removesuffix("group_of")
    ready_by_group = {g: await zset(redis, k.group_ready_prefix + g) for g in GROUPS if g}
    ring, blocked = await zset(redis, k.group_ring), await zset(redis, k.group_blocked)
    active = {g.decode(): int(n) for g, n in (await redis.hgetall(f"{prefix}gactive")).items()}

    queued_grouped = [u for u, f in jobs.items() if f["state"] == JobState.QUEUED and group_of.get(u)]
    for ulid in queued_grouped:
        assert ulid in ready_by_group[group_of[ulid]], ulid
    assert sorted(queued_grouped) == sorted(u for members in ready_by_group.values() for u in members)
    assert int(await redis.get(k.grouped_ready) or 0) == len(queued_grouped)
    for group, members in ready_by_group.items():
        if members:
            assert (group in ring) != (group in blocked), (group, ring, blocked)
    running = Counter(
        group_of[u] for u, f in jobs.items() if f["state"] == JobState.ACTIVE and group_of.get(u)
    )
    assert active == dict(running)
    (counts,) = await store.stats(["q"])
    queued = {u for u, f in jobs.items() if f["state"] == JobState.QUEUED}
    assert counts.queued == len(queued)
    listed, total = await store.list_jobs("q", JobState.QUEUED, 0, 1_000)
    assert total == len(queued) and {job.id.rpartition(":")[2] for _, job in listed} == queued
    if not paged:
        return
    pages = [
        job.id
        for start in range(0, total, 3)
        for _, job in (await store.list_jobs("q", JobState.QUEUED, start, 3))[0]
    ]
    assert pages == [job.id for _, job in listed]


@pytest.mark.parametrize("seed", range(6))
async def test_group_bookkeeping_holds_under_random_operations(
    redis: Redis, store: Store, clock: ManualClock, seed: int
) -> None:
    rng = random.Random(seed)
    ulids: list[str] = []
    held: list[tuple[str, str]] = []  # (job id, token) of leases not settled yet
    for step in range(150):
        action = rng.choice(
            ["enqueue", "enqueue", "lease", "ack", "fail", "release", "cancel", "retry", "time", "limits"]
        )
        if action == "enqueue":
            jobs = [
                NewJob(
                    "q",
                    priority=rng.choice(list(Priority)),
                    delay_ms=rng.choice([0, 0, 500]),
                    max_attempts=2,
                    group_key=rng.choice(GROUPS),
                )
                for _ in range(rng.randint(1, 5))
            ]
            ulids += [o.job_id.rpartition(":")[2] for o in (await store.enqueue(jobs)).outcomes]
        elif action == "lease":
            lease = await store.lease("q", rng.randint(1, 4), 1_000, "w")
            held += [(job.job_id, job.token) for job in lease.jobs]
        elif action in ("ack", "fail") and held:
            job_id, token = held.pop(rng.randrange(len(held)))
            settle = Settle(job_id, token, error="boom", non_retryable=rng.random() < 0.3)
            (outcome,) = await (store.ack([settle]) if action == "ack" else store.fail([settle]))
            assert not isinstance(outcome, JobNotFound)
        elif action == "release" and held:
            await store.release(held)
            held = []
        elif action in ("cancel", "retry") and ulids:
            job_id = f"q:{rng.choice(ulids)}"
            with contextlib.suppress(WrongState, LeaseLost):
                await (store.cancel(job_id) if action == "cancel" else store.retry(job_id))
        elif action == "time":
            clock.advance(rng.choice([300, 1_500]))  # leases of 1 s expire; delays run out
            await store.sweep("q")
        elif action == "limits":
            limits = QueueLimits(
                group_max_active=rng.choice([0, 1, 2]), group_rate_per_second=rng.choice([0, 0, 5])
            )
            await store.set_limits("q", limits)
        await _check(redis, store, ulids, paged=step % 25 == 0)
