"""trim-12.lua (run by store.sweep): finished jobs are deleted once retention_ms has passed."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound
from jobqueue_server.store import JobState, NewJob, Settle, Store
from tests.store.conftest import MakeStore
from tests.store.helpers import count_keys, enqueue, job_count, job_in_state, lease_one, ulid_of, zset

FINISHED = [JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED]


async def test_finished_jobs_are_deleted_once_the_retention_window_has_passed(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_ids = [await job_in_state(store, clock, state) for state in FINISHED]
    clock.advance(store.config.retention_ms)

    result = await store.sweep("q")

    assert result.trimmed == 3
    assert await job_count(redis, store) == 0
    keys = store.keys("q")
    assert await redis.exists(keys.completed, keys.dead, keys.cancelled) == 0
    for job_id in job_ids:
        with pytest.raises(JobNotFound):
            await store.get(job_id)


@pytest.mark.parametrize("state", FINISHED)
async def test_a_finished_job_is_kept_until_its_retention_window_has_passed(
    store: Store, clock: ManualClock, state: JobState
) -> None:
    job_id = await job_in_state(store, clock, state)
    clock.advance(store.config.retention_ms - 2)

    assert (await store.sweep("q")).trimmed == 0

    assert (await store.get(job_id)).state == state


async def test_only_jobs_finished_before_the_cutoff_are_deleted(
    make_store: MakeStore, redis: Redis, clock: ManualClock
) -> None:
    store = make_store(retention_ms=10_000)
    older, newer = await enqueue(store, NewJob(queue="q"), NewJob(queue="q"))
    await store.cancel(older)
    clock.advance(500)
    await store.cancel(newer)
    clock.advance(9_500)

    assert (await store.sweep("q")).trimmed == 1

    assert await zset(redis, store.keys("q").cancelled) == {ulid_of(newer): clock.ms - 9_500}
    with pytest.raises(JobNotFound):
        await store.get(older)
    assert (await store.get(newer)).state == JobState.CANCELLED


async def test_unfinished_jobs_are_never_trimmed(
    make_store: MakeStore, redis: Redis, clock: ManualClock
) -> None:
    store = make_store(retention_ms=1_000)
    await enqueue(
        store, NewJob(queue="q", lease_ms=60_000), NewJob(queue="q"), NewJob(queue="q", delay_ms=60_000)
    )
    await lease_one(store)
    clock.advance(30_000)

    assert (await store.sweep("q")).trimmed == 0

    assert await job_count(redis, store) == 3


async def test_one_sweep_trims_at_most_a_batch_per_finished_state(
    make_store: MakeStore, redis: Redis, clock: ManualClock
) -> None:
    store = make_store(retention_ms=1_000, sweep_batch=2)
    await enqueue(store, *(NewJob(queue="q") for _ in range(5)))
    for leased in (await store.lease("q", 5, 0, "w")).jobs:
        await store.ack([Settle(leased.job_id, leased.token)])
    clock.advance(1_000)

    assert [(await store.sweep("q")).trimmed for _ in range(4)] == [2, 2, 1, 0]
    assert await job_count(redis, store) == 0


async def test_idempotency_keys_expire_in_redis_with_the_window(make_store: MakeStore, redis: Redis) -> None:
    store = make_store(idempotency_window_ms=60_000)
    await enqueue(store, NewJob(queue="q", idempotency_key="a"), NewJob(queue="q", idempotency_key="b"))

    idem_keys = [key async for key in redis.scan_iter(match=store.keys("q").idem_prefix + "*")]

    assert len(idem_keys) == 2
    for key in idem_keys:
        assert 0 < await redis.pttl(key) <= 60_000


async def test_a_trimmed_job_leaves_no_key_behind_but_its_bounded_idempotency_key(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    (job_id,) = await enqueue(store, NewJob(queue="q", idempotency_key="k"))
    await store.cancel(job_id)
    clock.advance(store.config.retention_ms)

    await store.sweep("q")

    prefix = store.config.key_prefix
    remaining = sorted([key async for key in redis.scan_iter(match=f"{prefix}:*")])
    assert remaining == sorted([f"{prefix}:queues".encode(), (store.keys("q").idem_prefix + "k").encode()])
    assert await redis.pttl(store.keys("q").idem_prefix + "k") > 0
    assert await count_keys(redis, store.keys("q").job_prefix + "*") == 0
