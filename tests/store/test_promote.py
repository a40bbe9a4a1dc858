"""promote-6.lua (run by store.sweep): SCHEDULED -> QUEUED once the clock reaches the due time."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import Backoff, JobState, NewJob, Priority, Store
from tests.store.helpers import (
    enqueue,
    enqueue_one,
    fail_leased,
    job_fields,
    leased_job,
    listening,
    ready_ulids,
    ulid_of,
    zset,
)


async def test_a_due_job_joins_the_back_of_its_ready_list_with_its_ready_time_set(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    delayed = await enqueue_one(store, delay_ms=1_000)
    waiting = await enqueue_one(store)
    clock.advance(1_000)

    result = await store.sweep("q")

    assert (result.promoted, result.next_due_ms) == (1, None)
    assert await ready_ulids(redis, store) == [ulid_of(waiting), ulid_of(delayed)]
    assert await redis.zcard(store.keys("q").scheduled) == 0
    fields = await job_fields(redis, store, delayed)
    assert (fields["state"], fields["ready_ms"]) == ("queued", str(clock.ms))


async def test_a_job_is_not_promoted_a_millisecond_before_it_is_due(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, delay_ms=1_000)
    clock.advance(999)

    result = await store.sweep("q")

    assert (result.promoted, result.next_due_ms) == (0, clock.ms + 1)
    assert await zset(redis, store.keys("q").scheduled) == {ulid_of(job_id): clock.ms + 1}
    assert (await store.get(job_id)).state == JobState.SCHEDULED


async def test_jobs_due_together_are_promoted_in_due_order(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    third, first, second = await enqueue(
        store, *(NewJob(queue="q", delay_ms=d) for d in (3_000, 1_000, 2_000))
    )
    clock.advance(5_000)

    assert (await store.sweep("q")).promoted == 3

    assert await ready_ulids(redis, store) == [ulid_of(first), ulid_of(second), ulid_of(third)]


async def test_a_promoted_job_goes_to_its_own_priority_list(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    high = await enqueue_one(store, delay_ms=10, priority=Priority.HIGH)
    low = await enqueue_one(store, delay_ms=10, priority=Priority.LOW)
    clock.advance(10)

    await store.sweep("q")

    assert await ready_ulids(redis, store, priority=Priority.HIGH) == [ulid_of(high)]
    assert await ready_ulids(redis, store, priority=Priority.LOW) == [ulid_of(low)]
    assert [r.job_id for r in (await store.lease("q", 2, 0, "w")).jobs] == [high, low]


async def test_sweep_reports_when_the_next_scheduled_job_is_due(store: Store, clock: ManualClock) -> None:
    await enqueue(store, *(NewJob(queue="q", delay_ms=d) for d in (1_000, 4_000, 9_000)))
    clock.advance(1_000)

    assert (await store.sweep("q")).next_due_ms == clock.ms + 3_000


async def test_a_backed_off_retry_is_promoted_when_its_backoff_ends(store: Store, clock: ManualClock) -> None:
    leased = await leased_job(store, backoff=Backoff(initial_ms=2_000, jitter=0.0))
    outcome = await fail_leased(store, leased)
    clock.advance(outcome.due_ms - clock.ms - 1)
    assert (await store.sweep("q")).promoted == 0

    clock.advance(1)

    assert (await store.sweep("q")).promoted == 1
    assert (await store.get(leased.job_id)).state == JobState.QUEUED


async def test_promotion_wakes_idle_workers(store: Store, redis: Redis, clock: ManualClock) -> None:
    await enqueue_one(store, delay_ms=100)
    clock.advance(100)

    async with listening(redis, store) as signals:
        await store.sweep("q")

        assert await signals.next() == b"ready"
