"""Transitions from states written straight into Redis (tests/store/seed.py), not reached
through other transitions: each script reads only what the data model says it stores."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import LeaseLost, WrongState
from jobqueue_server.store import ExtendOutcome, FailOutcome, JobState, Priority, Settle, Store
from tests.store.helpers import job_fields, ready_ulids, snapshot, ulid_of, zset
from tests.store.seed import seed_job


async def test_a_seeded_active_job_is_completed_by_its_token(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await seed_job(redis, store, JobState.ACTIVE, token="t-1", attempts=1)

    assert await store.ack([Settle(job_id, "t-1", result=b"r")]) == [None]

    fields = await job_fields(redis, store, job_id)
    assert (fields["state"], fields["result"], "token" in fields) == ("completed", "r", False)
    assert await zset(redis, store.keys("q").completed) == {ulid_of(job_id): clock.ms}


async def test_a_seeded_active_job_refuses_another_token_and_stays_as_it_was(
    store: Store, redis: Redis
) -> None:
    job_id = await seed_job(redis, store, JobState.ACTIVE, token="t-1", attempts=1)
    before = await snapshot(redis, store)

    (outcome,) = await store.ack([Settle(job_id, "t-2")])

    assert isinstance(outcome, LeaseLost)
    assert await snapshot(redis, store) == before


async def test_a_seeded_job_on_its_last_attempt_fails_to_dead(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await seed_job(redis, store, JobState.ACTIVE, token="t", attempts=3, max_attempts=3)

    (outcome,) = await store.fail([Settle(job_id, "t", error="boom")])

    assert outcome == FailOutcome(JobState.DEAD, 0)
    assert await zset(redis, store.keys("q").dead) == {ulid_of(job_id): clock.ms}


async def test_a_seeded_lease_is_extended_from_the_clocks_now(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await seed_job(redis, store, JobState.ACTIVE, token="t", lease_expire_ms=clock.ms + 10)

    (outcome,) = await store.extend([Settle(job_id, "t", lease_ms=5_000)])

    assert outcome == ExtendOutcome(clock.ms + 5_000)
    assert await zset(redis, store.keys("q").active) == {ulid_of(job_id): clock.ms + 5_000}


async def test_a_seeded_high_priority_job_is_leased_before_older_normal_ones(
    store: Store, redis: Redis
) -> None:
    await seed_job(redis, store, JobState.QUEUED)
    high = await seed_job(redis, store, JobState.QUEUED, priority=Priority.HIGH)

    (first,) = (await store.lease("q", 1, 0, "w")).jobs

    assert first.job_id == high and first.attempts == 1


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.DEAD])
async def test_a_seeded_finished_job_cannot_be_cancelled(store: Store, redis: Redis, state: JobState) -> None:
    job_id = await seed_job(redis, store, state)

    with pytest.raises(WrongState, match=f"is {state}"):
        await store.cancel(job_id)


async def test_a_seeded_dead_job_is_redriven_to_the_front_of_its_list(store: Store, redis: Redis) -> None:
    waiting = await seed_job(redis, store, JobState.QUEUED)
    dead = await seed_job(
        redis, store, JobState.DEAD, attempts=3, errors='[{"attempt":3,"message":"x","time_ms":1}]'
    )

    await store.retry(dead)

    assert await ready_ulids(redis, store) == [ulid_of(waiting), ulid_of(dead)]
    fields = await job_fields(redis, store, dead)
    assert (fields["state"], fields["attempts"], "finish_ms" in fields) == ("queued", "0", False)
