"""ack-7.lua: ACTIVE -> COMPLETED, fenced by the lease token."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost
from jobqueue_server.store import JobState, NewJob, Settle, Store
from tests.store.helpers import job_fields


async def test_ack_completes_the_job_and_records_the_result(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    (outcome,) = (await store.enqueue([NewJob(queue="q")])).outcomes
    (leased,) = (await store.lease("q", 1, 0, "w1")).jobs
    clock.advance(250)

    assert await store.ack([Settle(outcome.job_id, leased.token, result=b"result")]) == [None]

    keys = store.keys("q")
    ulid = outcome.job_id.rpartition(":")[2]
    assert await redis.zscore(keys.completed, ulid) == clock.ms
    assert await redis.zcard(keys.active) == 0
    job = await store.get(outcome.job_id)
    assert (job.state, job.result, job.finish_ms) == (JobState.COMPLETED, b"result", clock.ms)
    fields = await job_fields(redis, store, outcome.job_id)
    assert not {"token", "lease_expire_ms", "worker"} & fields.keys()
    assert (fields["state"], fields["result"]) == ("completed", "result")


async def test_stale_lease_token_cannot_ack(store: Store, redis: Redis) -> None:
    (outcome,) = (await store.enqueue([NewJob(queue="q")])).outcomes
    await store.lease("q", 1, 0, "w1")

    (error,) = await store.ack([Settle(outcome.job_id, "not-the-token", result=b"x")])

    assert isinstance(error, LeaseLost)
    job = await store.get(outcome.job_id)
    assert (job.state, job.result) == (JobState.ACTIVE, b"")


async def test_a_second_ack_with_the_same_token_is_refused(store: Store) -> None:
    (outcome,) = (await store.enqueue([NewJob(queue="q")])).outcomes
    (leased,) = (await store.lease("q", 1, 0, "w1")).jobs
    await store.ack([Settle(outcome.job_id, leased.token, result=b"first")])

    (error,) = await store.ack([Settle(outcome.job_id, leased.token, result=b"second")])

    assert isinstance(error, LeaseLost)
    assert (await store.get(outcome.job_id)).result == b"first"


async def test_ack_of_an_unknown_job_is_not_found(store: Store) -> None:
    (error,) = await store.ack([Settle("q:01ARZ3NDEKTSV4RRFFQ69G5FAV", "token")])
    assert isinstance(error, JobNotFound)


async def test_one_call_acks_many_jobs_across_queues_in_order(store: Store) -> None:
    outcomes = (await store.enqueue([NewJob(queue="a"), NewJob(queue="b"), NewJob(queue="a")])).outcomes
    leased = {r.job_id: r.token for q in ("a", "b") for r in (await store.lease(q, 10, 0, "w")).jobs}
    items = [Settle(o.job_id, leased[o.job_id]) for o in outcomes]
    items.insert(1, Settle(outcomes[0].job_id, "stale"))

    results = await store.ack(items)

    assert results[0] is None and isinstance(results[1], LeaseLost) and results[2:] == [None, None]


async def test_an_empty_result_is_not_stored(store: Store, redis: Redis) -> None:
    (outcome,) = (await store.enqueue([NewJob(queue="q")])).outcomes
    (leased,) = (await store.lease("q", 1, 0, "w1")).jobs

    assert await store.ack([Settle(outcome.job_id, leased.token)]) == [None]

    assert await redis.exists(store.keys("q").result) == 0
    assert (await store.get(outcome.job_id)).result == b""


async def test_one_call_naming_a_job_twice_completes_it_once(store: Store, redis: Redis) -> None:
    (outcome,) = (await store.enqueue([NewJob(queue="q")])).outcomes
    (leased,) = (await store.lease("q", 1, 0, "w1")).jobs
    ack = Settle(outcome.job_id, leased.token, result=b"r")

    first, second = await store.ack([ack, ack])

    assert first is None and isinstance(second, LeaseLost)
    assert await redis.zcard(store.keys("q").completed) == 1
