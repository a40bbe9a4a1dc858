"""requeue-10.lua: lost leases back to the FRONT of their ready list (or DEAD), attempt kept.

Two modes: "expired" (the reaper, run by store.sweep once the clock passes the deadline) and
"released" (store.release, for the leases a closed stream held).
"""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import LeaseLost
from jobqueue_server.store import JobState, NewJob, Priority, Settle, Store
from tests.store.conftest import MakeStore
from tests.store.helpers import (
    enqueue,
    enqueue_one,
    job_fields,
    lease_one,
    leased_job,
    listening,
    ready_ulids,
    snapshot,
    ulid_of,
    zset,
)

RELEASED = "lease released: stream closed"


# -- expired: the reaper ---------------------------------------------------------------------


async def test_an_expired_lease_goes_back_to_the_front_of_its_ready_list(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    first, second = await enqueue(store, NewJob(queue="q", lease_ms=1_000), NewJob(queue="q"))
    await lease_one(store)
    clock.advance(1_000)

    result = await store.sweep("q")

    assert (result.requeued, result.dead) == (1, 0)
    assert await ready_ulids(redis, store) == [ulid_of(first), ulid_of(second)]
    assert await redis.zcard(store.keys("q").active) == 0
    fields = await job_fields(redis, store, first)
    # ready_ms keeps the time the job first became ready, so queue age stays honest.
    assert (fields["state"], fields["ready_ms"]) == ("queued", str(clock.ms - 1_000))
    assert not {"token", "lease_expire_ms", "worker"} & fields.keys()
    assert (await lease_one(store)).job_id == first


async def test_an_expired_lease_returns_to_its_own_priority_list(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, priority=Priority.LOW, lease_ms=1_000)
    await lease_one(store)
    clock.advance(1_000)

    await store.sweep("q")

    assert await ready_ulids(redis, store, priority=Priority.LOW) == [ulid_of(job_id)]


async def test_an_expired_lease_records_a_lease_expired_error_and_keeps_the_attempt(
    store: Store, clock: ManualClock
) -> None:
    leased = await leased_job(store, lease_ms=1_000)
    clock.advance(1_500)

    await store.sweep("q")

    job = await store.get(leased.job_id)
    assert (job.state, job.attempts, job.last_error) == (JobState.QUEUED, 1, "lease expired")
    assert [(e.attempt, e.message, e.time_ms) for e in job.errors] == [(1, "lease expired", clock.ms)]
    assert (await lease_one(store)).attempts == 2


async def test_a_lease_is_not_reaped_before_its_deadline(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store, lease_ms=1_000)
    clock.advance(999)

    result = await store.sweep("q")

    assert (result.requeued, result.next_due_ms) == (0, leased.lease_expire_ms)
    assert await zset(redis, store.keys("q").active) == {ulid_of(leased.job_id): leased.lease_expire_ms}
    assert await store.ack([Settle(leased.job_id, leased.token)]) == [None]


async def test_an_expired_lease_out_of_attempts_is_dead(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store, lease_ms=1_000, max_attempts=1)
    clock.advance(1_000)

    result = await store.sweep("q")

    assert (result.requeued, result.dead) == (0, 1)
    assert await zset(redis, store.keys("q").dead) == {ulid_of(leased.job_id): clock.ms}
    assert await ready_ulids(redis, store) == []
    job = await store.get(leased.job_id)
    assert (job.state, job.finish_ms, [e.message for e in job.errors]) == (
        JobState.DEAD,
        clock.ms,
        ["lease expired"],
    )


async def test_the_old_token_cannot_settle_a_reaped_job(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    stale = await leased_job(store, lease_ms=1_000)
    clock.advance(1_000)
    await store.sweep("q")
    current = await lease_one(store)
    before = await snapshot(redis, store)

    (ack,) = await store.ack([Settle(stale.job_id, stale.token, result=b"late")])
    (fail,) = await store.fail([Settle(stale.job_id, stale.token, error="late")])

    assert isinstance(ack, LeaseLost) and isinstance(fail, LeaseLost)
    assert await snapshot(redis, store) == before
    assert await store.ack([Settle(current.job_id, current.token, result=b"done")]) == [None]


async def test_the_reaper_takes_back_only_expired_leases_in_deadline_order(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    soon, later, never = await enqueue(
        store,
        NewJob(queue="q", lease_ms=1_000),
        NewJob(queue="q", lease_ms=2_000),
        NewJob(queue="q", lease_ms=9_000),
    )
    await store.lease("q", 3, 0, "w")
    clock.advance(2_000)

    result = await store.sweep("q")

    assert (result.requeued, result.next_due_ms) == (2, clock.ms + 7_000)
    # Each is pushed to the front in turn, so the last one reaped is leased first.
    assert await ready_ulids(redis, store) == [ulid_of(later), ulid_of(soon)]
    assert list(await zset(redis, store.keys("q").active)) == [ulid_of(never)]


async def test_requeued_error_entries_are_capped(make_store: MakeStore, clock: ManualClock) -> None:
    store = make_store(max_errors_kept=2)
    job_id = await enqueue_one(store, lease_ms=1_000, max_attempts=5)
    for _ in range(3):
        await lease_one(store)
        clock.advance(1_000)
        await store.sweep("q")

    assert [e.attempt for e in (await store.get(job_id)).errors] == [2, 3]


async def test_a_requeued_job_wakes_idle_workers(store: Store, redis: Redis, clock: ManualClock) -> None:
    await leased_job(store, lease_ms=1_000)
    clock.advance(1_000)

    async with listening(redis, store) as signals:
        await store.sweep("q")

        assert await signals.next() == b"ready"


# -- released: the stream that held the lease ended -------------------------------------------


async def test_release_puts_a_lease_back_at_the_front_of_its_ready_list(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    first, second = await enqueue(store, NewJob(queue="q"), NewJob(queue="q"))
    leased = await lease_one(store)
    clock.advance(10)

    assert await store.release([(leased.job_id, leased.token)]) == 1

    assert await ready_ulids(redis, store) == [ulid_of(first), ulid_of(second)]
    job = await store.get(first)
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)
    assert [(e.attempt, e.message, e.time_ms) for e in job.errors] == [(1, RELEASED, clock.ms)]
    assert await redis.zcard(store.keys("q").active) == 0


async def test_release_does_not_wait_for_the_lease_deadline(store: Store, clock: ManualClock) -> None:
    leased = await leased_job(store, lease_ms=3_600_000)

    assert await store.release([(leased.job_id, leased.token)]) == 1
    assert (await lease_one(store)).job_id == leased.job_id


async def test_release_of_a_lease_out_of_attempts_makes_the_job_dead(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store, max_attempts=1)

    assert await store.release([(leased.job_id, leased.token)]) == 1

    assert await zset(redis, store.keys("q").dead) == {ulid_of(leased.job_id): clock.ms}
    assert (await store.get(leased.job_id)).state == JobState.DEAD


@pytest.mark.parametrize("settle", ["reaped", "acked", "wrong-token"])
async def test_release_only_takes_back_leases_whose_token_is_current(
    store: Store, redis: Redis, clock: ManualClock, settle: str
) -> None:
    leased = await leased_job(store, lease_ms=1_000)
    token = leased.token
    if settle == "reaped":
        clock.advance(1_000)
        await store.sweep("q")
        await lease_one(store)
    elif settle == "acked":
        await store.ack([Settle(leased.job_id, token)])
    else:
        token = "not-the-token"
    before = await snapshot(redis, store)

    assert await store.release([(leased.job_id, token)]) == 0

    assert await snapshot(redis, store) == before


async def test_release_takes_back_many_leases_across_queues_and_skips_malformed_ids(store: Store) -> None:
    a = await leased_job(store, "a")
    b = await leased_job(store, "b:x")

    taken = await store.release([(a.job_id, a.token), ("not-an-id", "t"), (b.job_id, b.token)])

    assert taken == 2
    assert [(await store.get(r.job_id)).state for r in (a, b)] == [JobState.QUEUED, JobState.QUEUED]


async def test_a_lease_released_twice_in_one_call_is_taken_back_once(store: Store, redis: Redis) -> None:
    leased = await leased_job(store)

    assert await store.release([(leased.job_id, leased.token), (leased.job_id, leased.token)]) == 1

    assert await ready_ulids(redis, store) == [ulid_of(leased.job_id)]
    assert len((await store.get(leased.job_id)).errors) == 1
