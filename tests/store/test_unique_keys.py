"""Unique keys: while a job holding a key is scheduled, queued or active, an enqueue with the
same key is that job; once it ended the key is free, and trimming the job frees its entry."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import NewJob, Settle, Store
from tests.store.helpers import enqueue, enqueue_one, lease_one


@pytest.mark.parametrize("delay_ms", [0, 60_000])
async def test_a_key_held_by_a_pending_or_running_job_returns_that_job(store: Store, delay_ms: int) -> None:
    first = await enqueue_one(store, unique_key="report:42", delay_ms=delay_ms)
    again = await store.enqueue([NewJob("q", unique_key="report:42")])
    assert again.outcomes[0].job_id == first and again.outcomes[0].duplicate

    if delay_ms == 0:
        await lease_one(store)  # active: still held
        (outcome,) = (await store.enqueue([NewJob("q", unique_key="report:42")])).outcomes
        assert (outcome.job_id, outcome.duplicate) == (first, True)


async def test_a_key_is_free_again_once_its_job_ended(store: Store) -> None:
    first = await enqueue_one(store, unique_key="k")
    leased = await lease_one(store)
    await store.ack([Settle(first, leased.token)])

    (outcome,) = (await store.enqueue([NewJob("q", unique_key="k")])).outcomes

    assert outcome.job_id != first and not outcome.duplicate


async def test_two_jobs_with_one_key_in_one_batch_are_one_job(store: Store) -> None:
    ids = await enqueue(store, NewJob("q", unique_key="k"), NewJob("q", unique_key="k"), NewJob("q"))
    assert ids[0] == ids[1] != ids[2]


async def test_trimming_a_finished_job_frees_its_key_entry(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, unique_key="k")
    await store.cancel(job_id)
    clock.advance(store.config.retention_ms + 1)

    await store.sweep("q")

    assert await redis.hlen(store.keys("q").unique) == 0
