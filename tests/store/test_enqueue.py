"""enqueue-12.lua: new jobs to QUEUED (their ready list) or SCHEDULED, with idempotency keys."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import Backoff, JobState, Lease, NewJob, Priority, Store
from tests.store.helpers import (
    count_keys,
    enqueue,
    enqueue_one,
    job_count,
    job_fields,
    listening,
    ready_key,
    ready_ulids,
    ulid_of,
    zset,
)


async def test_enqueue_stores_every_field_of_a_queued_job(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(
        store,
        wire=b"\x0a\x01x",
        max_attempts=5,
        lease_ms=7_000,
        backoff=Backoff(10, 20, 1.5, 0.0),
        idempotency_key="k",
    )

    keys, ulid, now = store.keys("q"), ulid_of(job_id), clock.ms
    # state|token|worker|deadline|start|finish|attempts|has_errors|due|ready|create|priority|lease|max|backoff
    assert await redis.hgetall(keys.jobs) == {
        ulid.encode(): f"queued||||||0|0|{now}|{now}|{now}|2|7000|5|10,20,1.5,0.0".encode()
    }
    assert await redis.hgetall(keys.wire) == {ulid.encode(): b"\x0a\x01x"}
    assert await redis.exists(keys.errors, keys.result) == 0
    assert await job_fields(redis, store, job_id) == {
        "state": "queued",
        "priority": "2",
        "create_ms": str(now),
        "due_ms": str(now),
        "ready_ms": str(now),
        "wire": "\x0a\x01x",
        "attempts": "0",
        "has_errors": "0",
        "max_attempts": "5",
        "backoff": "10,20,1.5,0.0",
        "lease_ms": "7000",
    }
    job = await store.get(job_id)
    assert (job.state, job.backoff, job.wire, job.legacy) == (
        JobState.QUEUED,
        Backoff(10, 20, 1.5, 0.0),
        b"\x0a\x01x",
        None,
    )


async def test_a_scheduled_job_has_no_ready_time_in_its_record(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, delay_ms=500, priority=Priority.LOW)

    now = clock.ms
    assert await redis.hget(store.keys("q").jobs, ulid_of(job_id)) == (
        f"scheduled||||||0|0|{now + 500}||{now}|1|0|3|1000,3600000,2.0,0.2".encode()
    )


async def test_a_queued_job_joins_the_back_of_its_priority_list(store: Store, redis: Redis) -> None:
    first = await enqueue_one(store)
    second = await enqueue_one(store)

    assert await ready_ulids(redis, store) == [ulid_of(first), ulid_of(second)]
    assert await redis.zcard(store.keys("q").scheduled) == 0


@pytest.mark.parametrize("priority", list(Priority))
async def test_each_priority_level_has_its_own_ready_list(
    store: Store, redis: Redis, priority: Priority
) -> None:
    job_id = await enqueue_one(store, priority=priority)

    for level in Priority:
        expected = [ulid_of(job_id)] if level == priority else []
        assert await ready_ulids(redis, store, priority=level) == expected


async def test_a_delayed_job_is_scheduled_at_now_plus_the_delay(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    result = await store.enqueue([NewJob(queue="q", delay_ms=1_500)])

    (outcome,) = result.outcomes
    assert await zset(redis, store.keys("q").scheduled) == {ulid_of(outcome.job_id): clock.ms + 1_500}
    assert await redis.exists(ready_key(store, "q")) == 0
    fields = await job_fields(redis, store, outcome.job_id)
    assert (fields["state"], fields["due_ms"]) == ("scheduled", str(clock.ms + 1_500))
    assert "ready_ms" not in fields
    assert result.earliest_due_ms == clock.ms + 1_500


async def test_an_absolute_due_time_wins_over_the_delay(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, due_ms=clock.ms + 9_000, delay_ms=1_000)

    assert await zset(redis, store.keys("q").scheduled) == {ulid_of(job_id): clock.ms + 9_000}


async def test_a_due_time_already_passed_queues_the_job_at_once(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, due_ms=clock.ms - 5_000)

    assert await ready_ulids(redis, store) == [ulid_of(job_id)]
    assert (await store.get(job_id)).state == JobState.QUEUED


async def test_earliest_due_is_the_soonest_job_the_call_scheduled(store: Store, clock: ManualClock) -> None:
    result = await store.enqueue(
        [
            NewJob(queue="a", delay_ms=3_000),
            NewJob(queue="b", delay_ms=2_000),
            NewJob(queue="a"),
        ]
    )

    assert result.earliest_due_ms == clock.ms + 2_000


async def test_earliest_due_is_none_when_nothing_was_scheduled(store: Store) -> None:
    assert (await store.enqueue([NewJob(queue="q")])).earliest_due_ms is None


async def test_a_batch_across_queues_returns_outcomes_in_request_order(store: Store) -> None:
    queues = ["a", "b", "a", "c:sub", "b"]

    job_ids = await enqueue(store, *(NewJob(queue=q, wire=str(i).encode()) for i, q in enumerate(queues)))

    assert [job_id.rpartition(":")[0] for job_id in job_ids] == queues
    assert [(await store.get(job_id)).wire for job_id in job_ids] == [b"0", b"1", b"2", b"3", b"4"]
    assert await store.known_queues() == ["a", "b", "c:sub"]


async def test_jobs_of_one_batch_keep_their_order_in_the_ready_list(store: Store, redis: Redis) -> None:
    job_ids = await enqueue(store, *(NewJob(queue="q") for _ in range(5)))

    assert await ready_ulids(redis, store) == [ulid_of(job_id) for job_id in job_ids]


async def test_the_same_idempotency_key_within_the_window_returns_the_first_job(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    first = (await store.enqueue([NewJob(queue="q", wire=b"1", idempotency_key="order-7")])).outcomes[0]
    clock.advance(store.config.idempotency_window_ms - 1)

    (again,) = (await store.enqueue([NewJob(queue="q", wire=b"2", idempotency_key="order-7")])).outcomes

    assert (again.job_id, again.duplicate, first.duplicate) == (first.job_id, True, False)
    assert await job_count(redis, store) == 1
    assert len(await ready_ulids(redis, store)) == 1
    assert (await store.get(first.job_id)).wire == b"1"


async def test_a_repeated_idempotency_key_within_one_batch_creates_one_job(
    store: Store, redis: Redis
) -> None:
    outcomes = (await store.enqueue([NewJob(queue="q", idempotency_key="k")] * 3)).outcomes

    assert len({outcome.job_id for outcome in outcomes}) == 1
    assert [outcome.duplicate for outcome in outcomes] == [False, True, True]
    assert await job_count(redis, store) == 1


async def test_after_the_idempotency_window_the_same_key_creates_a_new_job(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    first = await enqueue_one(store, idempotency_key="k")
    clock.advance(store.config.idempotency_window_ms)

    (later,) = (await store.enqueue([NewJob(queue="q", idempotency_key="k")])).outcomes

    assert (later.job_id != first, later.duplicate) == (True, False)
    assert await job_count(redis, store) == 2
    (again,) = (await store.enqueue([NewJob(queue="q", idempotency_key="k")])).outcomes
    assert (again.job_id, again.duplicate) == (later.job_id, True)


async def test_idempotency_keys_are_scoped_to_their_queue(store: Store) -> None:
    result = await store.enqueue(
        [NewJob(queue="a", idempotency_key="k"), NewJob(queue="b", idempotency_key="k")]
    )

    assert [outcome.duplicate for outcome in result.outcomes] == [False, False]


async def test_jobs_without_an_idempotency_key_are_never_deduplicated(store: Store, redis: Redis) -> None:
    outcomes = (await store.enqueue([NewJob(queue="q", wire=b"same")] * 2)).outcomes

    assert [outcome.duplicate for outcome in outcomes] == [False, False]
    assert await job_count(redis, store) == 2
    assert await count_keys(redis, store.keys("q").idem_prefix + "*") == 0


async def test_enqueueing_a_ready_job_wakes_idle_workers(store: Store, redis: Redis) -> None:
    async with listening(redis, store) as signals:
        await enqueue_one(store)

        message = await signals.next()
        assert message is not None and message.startswith(b"ready")


async def test_a_lease_sent_once_an_enqueue_is_written_finds_its_jobs(store: Store) -> None:
    # The server wakes its streams at `sent`, before the enqueue's reply: a lease sent then must
    # run after the enqueue in Redis (one pipelined connection, commands in order).
    leases: dict[str, asyncio.Task[Lease]] = {}

    def sent(queue: str) -> None:
        assert queue not in leases, "sent twice for one queue"
        leases[queue] = asyncio.ensure_future(store.lease(queue, 10, 30_000, "w"))

    jobs = [NewJob(queue="a"), NewJob(queue="b"), NewJob(queue="a")]
    result = await store.enqueue(jobs, sent=sent)

    leased = {queue: [job.job_id for job in (await task).jobs] for queue, task in leases.items()}
    ids = [outcome.job_id for outcome in result.outcomes]
    assert leased == {"a": [ids[0], ids[2]], "b": [ids[1]]}
