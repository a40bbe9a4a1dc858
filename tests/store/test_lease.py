"""lease-13.lua: QUEUED -> ACTIVE, high priority first, FIFO within a level, one attempt each."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import NewJob, Priority, Settle, Store
from jobqueue_server.store.decode import errors_of
from tests.store.helpers import (
    enqueue,
    enqueue_one,
    fail_leased,
    job_fields,
    lease_one,
    leased_job,
    ready_ulids,
    ulid_of,
    zset,
)


async def test_lease_takes_high_before_normal_before_low(store: Store) -> None:
    low, normal, high = await enqueue(
        store, *(NewJob(queue="q", priority=p) for p in (Priority.LOW, Priority.NORMAL, Priority.HIGH))
    )

    leased = (await store.lease("q", 3, 0, "w")).jobs

    assert [r.job_id for r in leased] == [high, normal, low]


async def test_lease_is_first_in_first_out_within_a_priority_level(store: Store) -> None:
    first = await enqueue(store, *(NewJob(queue="q") for _ in range(3)))
    second = await enqueue(store, *(NewJob(queue="q") for _ in range(2)))

    leased = [(await lease_one(store)).job_id for _ in range(5)]

    assert leased == first + second


async def test_lease_takes_at_most_count_jobs_and_leaves_the_rest_in_order(
    store: Store, redis: Redis
) -> None:
    high = await enqueue_one(store, priority=Priority.HIGH)
    normal = await enqueue(store, *(NewJob(queue="q") for _ in range(3)))

    leased = (await store.lease("q", 2, 0, "w")).jobs

    assert [r.job_id for r in leased] == [high, normal[0]]
    assert await ready_ulids(redis, store) == [ulid_of(job_id) for job_id in normal[1:]]
    assert await redis.zcard(store.keys("q").active) == 2


async def test_lease_of_an_empty_queue_returns_nothing(store: Store, redis: Redis) -> None:
    assert (await store.lease("q", 10, 0, "w")).jobs == []
    assert await redis.exists(store.keys("q").active) == 0


async def test_lease_counts_an_attempt_and_records_the_lease(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, wire=b"work", max_attempts=4)
    created = clock.ms
    clock.advance(10)

    lease = await store.lease("q", 1, 5_000, "worker-1")

    deadline = clock.ms + 5_000
    (leased,) = lease.jobs
    assert (lease.start_ms, lease.worker_id) == (clock.ms, "worker-1")
    assert (leased.job_id, leased.attempts, leased.wire, leased.lease_expire_ms) == (
        job_id,
        1,
        b"work",
        deadline,
    )
    assert (leased.create_ms, leased.due_ms, leased.last_error, leased.errors) == (created, created, b"", b"")
    fields = await job_fields(redis, store, job_id)
    assert {
        k: fields[k] for k in ("state", "attempts", "token", "start_ms", "lease_expire_ms", "worker")
    } == {
        "state": "active",
        "attempts": "1",
        "token": leased.token,
        "start_ms": str(clock.ms),
        "lease_expire_ms": str(deadline),
        "worker": "worker-1",
    }
    assert await zset(redis, store.keys("q").active) == {ulid_of(job_id): deadline}
    assert await ready_ulids(redis, store) == []


async def test_every_lease_gets_its_own_token(store: Store) -> None:
    await enqueue(store, *(NewJob(queue="q") for _ in range(4)))

    tokens = [r.token for r in (await store.lease("q", 3, 0, "w")).jobs]
    tokens.append((await lease_one(store)).token)

    assert len(set(tokens)) == 4


async def test_a_job_leased_again_gets_a_new_token(store: Store, clock: ManualClock) -> None:
    first = await leased_job(store, lease_ms=1_000)
    clock.advance(1_000)
    await store.sweep("q")

    second = await lease_one(store)

    assert second.job_id == first.job_id and second.token != first.token
    assert second.attempts == 2


async def test_a_jobs_own_lease_length_wins_over_the_streams(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, lease_ms=120_000)

    leased = await lease_one(store, lease_ms=5_000)

    assert leased.lease_expire_ms == clock.ms + 120_000
    assert await zset(redis, store.keys("q").active) == {ulid_of(job_id): clock.ms + 120_000}


async def test_the_streams_lease_length_applies_when_the_job_has_none(
    store: Store, clock: ManualClock
) -> None:
    await enqueue_one(store)

    assert (await lease_one(store, lease_ms=5_000)).lease_expire_ms == clock.ms + 5_000


async def test_the_default_lease_length_applies_when_neither_sets_one(
    store: Store, clock: ManualClock
) -> None:
    await enqueue_one(store)

    assert (await lease_one(store, lease_ms=0)).lease_expire_ms == clock.ms + store.config.default_lease_ms


async def test_a_scheduled_job_is_never_leased_before_it_is_due(store: Store, clock: ManualClock) -> None:
    job_id = await enqueue_one(store, delay_ms=1_000)
    assert (await store.lease("q", 1, 0, "w")).jobs == []

    clock.advance(999)
    await store.sweep("q")
    assert (await store.lease("q", 1, 0, "w")).jobs == []

    clock.advance(1)
    await store.sweep("q")
    assert [r.job_id for r in (await store.lease("q", 1, 0, "w")).jobs] == [job_id]


async def test_the_leased_record_carries_the_jobs_error_history(store: Store, clock: ManualClock) -> None:
    first = await leased_job(store, wire=b"w")
    await fail_leased(store, first, "timeout", retry_delay_ms=0)
    failed_at = clock.ms
    await store.sweep("q")

    again = await lease_one(store)

    assert [(e.attempt, e.message, e.time_ms) for e in errors_of(again.errors)] == [(1, "timeout", failed_at)]
    assert (again.last_error, again.wire, again.attempts) == (b"timeout", b"w", 2)


async def test_a_leased_job_cannot_be_leased_by_another_worker(store: Store) -> None:
    leased = await leased_job(store)

    assert (await store.lease("q", 10, 0, "other")).jobs == []
    assert await store.ack([Settle(leased.job_id, leased.token)]) == [None]


async def test_a_worker_id_of_any_characters_is_kept_whole(store: Store) -> None:
    job_id = await enqueue_one(store)

    await lease_one(store, worker="host|7\nproc|")

    assert (await store.get(job_id)).worker_id == "host|7\nproc|"


async def test_batches_longer_than_one_command_slice_keep_every_job_in_order(
    store: Store, redis: Redis
) -> None:
    job_ids = await enqueue(store, *(NewJob(queue="q", wire=str(n).encode()) for n in range(4_500)))

    lease = await store.lease("q", 4_500, 0, "w")

    assert [job.job_id for job in lease.jobs] == job_ids
    assert [job.wire for job in lease.jobs] == [str(n).encode() for n in range(4_500)]
    assert await store.ack([Settle(job.job_id, job.token) for job in lease.jobs]) == [None] * 4_500
    assert await redis.zcard(store.keys("q").completed) == 4_500


async def test_a_lease_is_written_when_called_not_when_awaited(store: Store) -> None:
    # Called from a wake-up, the lease must go out right behind the enqueue that woke the
    # stream (lease_session.py): it is written before `lease` returns, so a job enqueued after
    # the call and before the await is not in it.
    await enqueue(store, NewJob(queue="q"))  # the pipeline's connection is open
    await lease_one(store)
    pending = store.lease("q", 5, 0, "w")
    (later,) = await enqueue(store, NewJob(queue="q"))

    assert (await pending).jobs == []
    assert (await lease_one(store)).job_id == later
