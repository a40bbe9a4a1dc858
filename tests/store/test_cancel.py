"""cancel-10.lua: QUEUED | SCHEDULED -> CANCELLED; every other state is refused."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost, WrongState
from jobqueue_server.store import JobState, NewJob, Priority, Settle, Store
from tests.store.helpers import (
    enqueue,
    enqueue_one,
    job_in_state,
    plain_pubsub,
    ready_ulids,
    snapshot,
    ulid_of,
    zset,
)


async def test_cancel_takes_a_queued_job_out_of_its_ready_list(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    before, job_id, after = await enqueue(
        store, *(NewJob(queue="q", priority=Priority.LOW) for _ in range(3))
    )
    clock.advance(5)

    await store.cancel(job_id)

    assert await ready_ulids(redis, store, priority=Priority.LOW) == [ulid_of(before), ulid_of(after)]
    assert await zset(redis, store.keys("q").cancelled) == {ulid_of(job_id): clock.ms}
    job = await store.get(job_id)
    assert (job.state, job.finish_ms) == (JobState.CANCELLED, clock.ms)


async def test_cancel_takes_a_scheduled_job_out_of_the_scheduled_zset(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, delay_ms=1_000)

    await store.cancel(job_id)

    keys = store.keys("q")
    assert await redis.zcard(keys.scheduled) == 0
    assert await zset(redis, keys.cancelled) == {ulid_of(job_id): clock.ms}
    assert (await store.get(job_id)).state == JobState.CANCELLED


@pytest.mark.parametrize("delay_ms", [0, 1_000])
async def test_a_cancelled_job_is_never_leased(store: Store, clock: ManualClock, delay_ms: int) -> None:
    job_id = await enqueue_one(store, delay_ms=delay_ms)
    await store.cancel(job_id)
    clock.advance(2_000)

    await store.sweep("q")

    assert (await store.lease("q", 10, 0, "w")).jobs == []


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED])
async def test_cancel_is_refused_for_a_finished_job(
    store: Store, redis: Redis, clock: ManualClock, state: JobState
) -> None:
    job_id = await job_in_state(store, clock, state)
    before = await snapshot(redis, store)

    with pytest.raises(WrongState, match=str(state)):
        await store.cancel(job_id)

    assert await snapshot(redis, store) == before


async def test_cancel_of_an_active_job_ends_its_lease_and_publishes_its_stop(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store)
    (leased,) = (await store.lease("q", 1, 0, "w")).jobs
    async with plain_pubsub(redis) as pubsub:
        await pubsub.subscribe(f"{store.config.key_prefix}:stops")
        await pubsub.get_message(timeout=1.0)  # the subscription's confirmation

        await store.cancel(job_id)

        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
    assert message is not None and message["data"] == f"{job_id}|{leased.token}|cancelled".encode()
    record = await store.get(job_id)
    assert record.state is JobState.CANCELLED and record.finish_ms == clock.now_ms()
    assert await redis.zscore(store.keys("q").active, job_id.rpartition(":")[2]) is None
    (outcome,) = await store.ack([Settle(job_id, leased.token)])
    assert isinstance(outcome, LeaseLost)


@pytest.mark.parametrize("job_id", ["q:01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-a-job-id"])
async def test_cancel_of_an_unknown_job_is_not_found(store: Store, job_id: str) -> None:
    with pytest.raises(JobNotFound):
        await store.cancel(job_id)
