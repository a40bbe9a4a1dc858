"""retry-8.lua: DEAD | CANCELLED -> QUEUED with attempts reset and the error history kept."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost, WrongState
from jobqueue_server.store import JobState, Priority, Settle, Store
from tests.store.helpers import (
    enqueue_one,
    fail_leased,
    job_fields,
    job_in_state,
    lease_one,
    leased_job,
    listening,
    ready_ulids,
    snapshot,
    ulid_of,
)


async def test_retry_queues_a_dead_job_with_attempts_reset_and_its_history_kept(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store, max_attempts=1)
    await fail_leased(store, leased, "crashed")
    failed_at = clock.ms
    clock.advance(60_000)

    await store.retry(leased.job_id)

    keys = store.keys("q")
    assert await redis.zcard(keys.dead) == 0
    assert await ready_ulids(redis, store) == [ulid_of(leased.job_id)]
    fields = await job_fields(redis, store, leased.job_id)
    assert (fields["state"], fields["attempts"], fields["ready_ms"]) == ("queued", "0", str(clock.ms))
    assert "finish_ms" not in fields
    job = await store.get(leased.job_id)
    assert [(e.attempt, e.message, e.time_ms) for e in job.errors] == [(1, "crashed", failed_at)]


async def test_a_retried_job_gets_all_its_attempts_again(store: Store, clock: ManualClock) -> None:
    leased = await leased_job(store, max_attempts=2, lease_ms=1_000)
    clock.advance(1_000)
    await store.sweep("q")
    await lease_one(store)
    clock.advance(1_000)
    await store.sweep("q")
    assert (await store.get(leased.job_id)).state == JobState.DEAD

    await store.retry(leased.job_id)
    again = await lease_one(store)

    assert again.attempts == 1
    outcome = await fail_leased(store, again, retry_delay_ms=0)
    assert outcome.state == JobState.SCHEDULED


async def test_retry_queues_a_cancelled_job(store: Store, redis: Redis, clock: ManualClock) -> None:
    job_id = await job_in_state(store, clock, JobState.CANCELLED)

    await store.retry(job_id)

    assert await redis.zcard(store.keys("q").cancelled) == 0
    assert (await lease_one(store)).job_id == job_id


async def test_a_retried_job_joins_the_back_of_its_own_priority_list(store: Store, redis: Redis) -> None:
    leased = await leased_job(store, priority=Priority.HIGH, max_attempts=1)
    await fail_leased(store, leased)
    waiting = await enqueue_one(store, priority=Priority.HIGH)

    await store.retry(leased.job_id)

    assert await ready_ulids(redis, store, priority=Priority.HIGH) == [
        ulid_of(waiting),
        ulid_of(leased.job_id),
    ]


async def test_a_retried_job_is_not_trimmed_at_its_old_finish_time(store: Store, clock: ManualClock) -> None:
    job_id = await job_in_state(store, clock, JobState.DEAD)
    await store.retry(job_id)
    clock.advance(store.config.retention_ms + 1)

    await store.sweep("q")

    assert (await store.get(job_id)).state == JobState.QUEUED


@pytest.mark.parametrize("state", [JobState.QUEUED, JobState.SCHEDULED, JobState.ACTIVE, JobState.COMPLETED])
async def test_retry_is_refused_for_a_job_that_did_not_end_badly(
    store: Store, redis: Redis, clock: ManualClock, state: JobState
) -> None:
    job_id = await job_in_state(store, clock, state)
    before = await snapshot(redis, store)

    with pytest.raises(WrongState, match=str(state)):
        await store.retry(job_id)

    assert await snapshot(redis, store) == before


@pytest.mark.parametrize("job_id", ["q:01ARZ3NDEKTSV4RRFFQ69G5FAV", "q:"])
async def test_retry_of_an_unknown_job_is_not_found(store: Store, job_id: str) -> None:
    with pytest.raises(JobNotFound):
        await store.retry(job_id)


async def test_retry_wakes_idle_workers(store: Store, redis: Redis, clock: ManualClock) -> None:
    job_id = await job_in_state(store, clock, JobState.DEAD)

    async with listening(redis, store) as signals:
        await store.retry(job_id)

        assert await signals.next() == b"ready"


async def test_the_old_token_of_a_retried_job_stays_stale(store: Store) -> None:
    leased = await leased_job(store, max_attempts=1)
    await fail_leased(store, leased)
    await store.retry(leased.job_id)

    (outcome,) = await store.ack([Settle(leased.job_id, leased.token)])

    assert isinstance(outcome, LeaseLost)
    assert (await store.get(leased.job_id)).state == JobState.QUEUED
