"""Unary Enqueue calls under load share script calls (a group commit), each caller still with
its own job id or its own error."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.group_commit import GroupCommit, _take, _Waiting
from jobqueue_server.store import Durability, EnqueueResult, NewJob, Store
from tests.server.streams import payload
from tests.support import not_on_cluster

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def _script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


async def test_enqueues_that_arrive_during_a_store_call_go_together_in_the_next(
    stub: Stub, redis: Redis
) -> None:
    # Writes pause for 300 ms: the first call's script waits, and the others pile up behind it.
    await redis.client_pause(300, all=False)
    before = await _script_calls(redis)

    responses = await asyncio.gather(
        *(stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(n=n))) for n in range(200))
    )

    calls = await _script_calls(redis) - before
    assert len({r.job_id for r in responses}) == 200
    assert calls <= 10, f"{calls} script calls for 200 concurrent enqueues"  # 2, and any sweeps
    jobs = await asyncio.gather(*(stub.GetStatus(svc.GetStatusRequest(job_id=r.job_id)) for r in responses))
    assert [j.job.payload["n"] for j in jobs] == list(range(200))
    assert all(j.job.state == job_pb2.JOB_STATE_QUEUED for j in jobs)


@not_on_cluster("counts commands, sets maxmemory on one Redis node")
async def test_a_lone_enqueue_is_written_at_once(stub: Stub, redis: Redis) -> None:
    before = await _script_calls(redis)

    response = await stub.Enqueue(svc.EnqueueRequest(queue="q"))

    assert response.job_id and await _script_calls(redis) - before == 1


@not_on_cluster("counts commands, sets maxmemory on one Redis node")
async def test_every_caller_of_a_failed_store_call_gets_its_error(store: Store) -> None:
    seen: list[int] = []

    async def write(jobs: list[NewJob], durability: Durability) -> EnqueueResult:
        result = await store.enqueue(jobs, durability)
        seen.append(len(jobs))
        return result

    commit = GroupCommit(write)
    await store.redis.config_set("maxmemory", 1)
    try:
        results = await asyncio.gather(
            *(commit.enqueue(NewJob(queue="q"), Durability.APPLIED) for _ in range(5)), return_exceptions=True
        )
    finally:
        await store.redis.config_set("maxmemory", 0)

    assert [type(r).__name__ for r in results] == ["StoreFull"] * 5
    assert seen == []


async def test_a_caller_that_went_away_before_its_job_was_taken_has_it_dropped() -> None:
    loop = asyncio.get_running_loop()
    waiting = _Waiting()
    for name in ("a", "gone", "b"):
        waiting.entries.append([NewJob(queue=name)])
        waiting.futures.append(loop.create_future())
        waiting.jobs += 1
    waiting.futures[1].cancel()

    entries, futures = _take(waiting)

    assert [[j.queue for j in jobs] for jobs in entries] == [["a"], ["b"]] and len(futures) == 2
    assert waiting.entries == [] and waiting.futures == [] and waiting.jobs == 0


async def test_a_callers_jobs_go_together_and_a_call_stops_before_an_entry_that_would_overflow_it() -> None:
    loop = asyncio.get_running_loop()
    sizes = [600, 600, 1_500]
    waiting = _Waiting(entries=[[NewJob(queue="q")] * n for n in sizes], jobs=sum(sizes))
    waiting.futures = [loop.create_future() for _ in sizes]

    calls = [_take(waiting)[0] for _ in sizes]

    assert [[len(jobs) for jobs in entries] for entries in calls] == [[600], [600], [1_500]]
    for future in waiting.futures:
        future.cancel()


@pytest.mark.parametrize("count", [1_001])
async def test_a_call_takes_at_most_a_thousand_jobs(count: int) -> None:
    loop = asyncio.get_running_loop()
    waiting = _Waiting(entries=[[NewJob(queue="q")] for _ in range(count)], jobs=count)
    waiting.futures = [loop.create_future() for _ in range(count)]

    first, _ = _take(waiting)
    second, _ = _take(waiting)

    assert (len(first), len(second)) == (1_000, 1)
    for future in waiting.futures:
        future.cancel()


async def test_a_refused_enqueue_fails_only_its_caller(stub: Stub) -> None:
    good = stub.Enqueue(svc.EnqueueRequest(queue="q"))
    bad = stub.Enqueue(svc.EnqueueRequest(queue="bad queue"))

    results = await asyncio.gather(good, bad, return_exceptions=True)

    assert isinstance(results[0], svc.EnqueueResponse) and results[0].job_id
    assert isinstance(results[1], grpc.aio.AioRpcError)
    assert results[1].code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_enqueues_received_together_share_script_calls_with_no_store_delay(
    stub: Stub, redis: Redis
) -> None:
    before = await _script_calls(redis)

    responses = await asyncio.gather(
        *(stub.Enqueue(svc.EnqueueRequest(queue="together", payload=payload(n=n))) for n in range(64))
    )

    calls = await _script_calls(redis) - before
    assert len({r.job_id for r in responses}) == 64
    assert calls <= 16, f"{calls} script calls for 64 jobs sent together"
