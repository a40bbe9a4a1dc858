"""stats-13.lua: per-queue counts by state and the age of the oldest ready job, on the store's clock."""

from __future__ import annotations

import pytest

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import JobState, NewJob, Priority, QueueCounts, Store
from tests.store.helpers import enqueue, enqueue_one, job_in_state, lease_one, leased_job


async def _counts(store: Store, queue: str = "q") -> QueueCounts:
    (counts,) = await store.stats([queue])
    return counts


async def test_stats_count_the_jobs_in_every_state(store: Store, clock: ManualClock) -> None:
    for state in (JobState.ACTIVE, JobState.COMPLETED, JobState.DEAD, JobState.DEAD, JobState.CANCELLED):
        await job_in_state(store, clock, state)
    await enqueue(store, *(NewJob(queue="q", delay_ms=1_000) for _ in range(2)))
    await enqueue(store, NewJob(queue="q", priority=Priority.HIGH), NewJob(queue="q", priority=Priority.LOW))
    await enqueue_one(store)

    assert await _counts(store) == QueueCounts(
        "q", queued=3, scheduled=2, active=1, completed=1, dead=2, cancelled=1, oldest_queued_age_ms=0
    )


async def test_stats_of_a_queue_never_used_are_zero(store: Store) -> None:
    assert await _counts(store, "never") == QueueCounts("never", 0, 0, 0, 0, 0, 0, 0)


async def test_stats_answer_for_each_queue_asked_in_order(store: Store) -> None:
    await enqueue(store, NewJob(queue="a"), NewJob(queue="b"), NewJob(queue="b"))

    counts = await store.stats(["b", "none", "a"])

    assert [(c.queue, c.queued) for c in counts] == [("b", 2), ("none", 0), ("a", 1)]


async def test_the_oldest_queued_age_is_measured_on_the_clock(store: Store, clock: ManualClock) -> None:
    await enqueue_one(store)
    clock.advance(500)
    await enqueue_one(store)
    clock.advance(250)

    assert (await _counts(store)).oldest_queued_age_ms == 750


async def test_the_oldest_queued_age_looks_at_every_priority_level(store: Store, clock: ManualClock) -> None:
    await enqueue_one(store, priority=Priority.LOW)
    clock.advance(2_000)
    await enqueue_one(store, priority=Priority.HIGH)
    clock.advance(100)

    assert (await _counts(store)).oldest_queued_age_ms == 2_100


async def test_the_oldest_queued_age_moves_on_when_the_oldest_job_is_leased(
    store: Store, clock: ManualClock
) -> None:
    await enqueue_one(store)
    clock.advance(300)
    await enqueue_one(store)
    clock.advance(200)

    await lease_one(store)

    assert (await _counts(store)).oldest_queued_age_ms == 200


async def test_a_delayed_job_ages_from_when_it_became_ready(store: Store, clock: ManualClock) -> None:
    await enqueue_one(store, delay_ms=10_000)
    clock.advance(10_000)
    await store.sweep("q")
    clock.advance(40)

    assert (await _counts(store)).oldest_queued_age_ms == 40


@pytest.mark.parametrize("state", [JobState.SCHEDULED, JobState.ACTIVE, JobState.COMPLETED])
async def test_the_oldest_queued_age_is_zero_without_ready_jobs(
    store: Store, clock: ManualClock, state: JobState
) -> None:
    await job_in_state(store, clock, state)
    clock.advance(5_000)

    assert (await _counts(store)).oldest_queued_age_ms == 0


async def test_a_requeued_lease_does_not_hide_the_age_of_the_jobs_waiting_behind_it(
    store: Store, clock: ManualClock
) -> None:
    await leased_job(store, lease_ms=10_000)
    await enqueue_one(store)
    clock.advance(10_000)
    await store.sweep("q")  # the lease expired: the job goes back to the front of the list
    clock.advance(5_000)

    counts = await _counts(store)

    assert counts.queued == 2
    assert counts.oldest_queued_age_ms >= 15_000
