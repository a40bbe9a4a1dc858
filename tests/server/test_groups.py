"""Groups (EnqueueRequest.group_key): a queue serves its groups round-robin, so one group with
10,000 jobs waiting does not hold back 100 groups of 10; per-group limits (at most N running, at
most R a second) hold across servers; a grouped job keeps its group through every transition."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import LeaseStream, payload, wait_for_state

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def _enqueue_group(stub: Stub, queue: str, group: str, count: int, **fields: object) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 1_000):
        requests = [
            svc.EnqueueRequest(queue=queue, group_key=group, payload=payload(group=group, n=n), **fields)  # type: ignore[arg-type]
            for n in range(start, min(count, start + 1_000))
        ]
        response = await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests))
        ids += [r.job_id for r in response.responses]
    return ids


async def _limits(stub: Stub, queue: str, **limits: float) -> None:
    await stub.SetQueueLimits(svc.SetQueueLimitsRequest(queue=queue, limits=job_pb2.QueueLimits(**limits)))  # type: ignore[arg-type]


async def _drain(stream: LeaseStream, count: int) -> list[str]:
    """Leases and acks `count` jobs; returns their groups in the order they were leased."""
    acked = 0
    while acked < count:
        await stream.wait_jobs(acked + 1, timeout_s=30)
        await stream.ack(*stream.jobs[acked:])
        acked = len(stream.jobs)
    return [job.job.payload["group"] for job in stream.jobs[:count]]


async def test_a_big_group_does_not_hold_back_a_hundred_small_ones(stub: Stub) -> None:
    await _enqueue_group(stub, "fair", "big", 10_000)
    for n in range(100):
        await _enqueue_group(stub, "fair", f"small-{n}", 10)
    stats = (await stub.Stats(svc.StatsRequest(queue="fair"))).queues[0]
    assert stats.queued == 11_000

    stream = await LeaseStream(stub).subscribe("fair", max_in_flight=50)
    order = await _drain(stream, 11_000)
    await stream.close()

    last_small = max(i for i, group in enumerate(order) if group != "big")
    # Round-robin: ten turns of the 101 groups serve every small job (1,010 leases); first in,
    # first out would have served them after the 10,000 big ones.
    assert last_small < 1_100, last_small
    assert order.count("big") == 10_000


async def test_at_most_one_running_job_per_group_across_servers(stub: Stub, second_stub: Stub) -> None:
    await _limits(stub, "one-each", group_max_active=1)
    for group in ("a", "b", "c"):
        await _enqueue_group(stub, "one-each", group, 4)
    streams = [
        await LeaseStream(stub).subscribe("one-each", max_in_flight=10),
        await LeaseStream(second_stub).subscribe("one-each", max_in_flight=10),
    ]
    readers = [asyncio.create_task(_read_forever(stream)) for stream in streams]
    acked = [0, 0]
    async with asyncio.timeout(20):
        while sum(acked) < 12:
            while sum(len(s.jobs) for s in streams) == sum(acked):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # time for a wrongly leased second job of a group to arrive
            held = [(i, job) for i, s in enumerate(streams) for job in s.jobs[acked[i] :]]
            groups = [job.job.payload["group"] for _, job in held]
            assert len(groups) == len(set(groups)), groups  # one running job per group, on both
            for i, stream in enumerate(streams):
                if len(stream.jobs) > acked[i]:
                    await stream.ack(*stream.jobs[acked[i] :])
                    acked[i] = len(stream.jobs)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


async def _read_forever(stream: LeaseStream) -> None:
    while True:
        await stream._read_one()


async def test_a_groups_rate_bounds_it_alone(stub: Stub) -> None:
    await _limits(stub, "paced", group_rate_per_second=10, group_burst=1)
    await _enqueue_group(stub, "paced", "slow", 20)
    others = await _enqueue_group(stub, "paced", "other", 5)

    stream = await LeaseStream(stub).subscribe("paced", max_in_flight=50)
    began = asyncio.get_running_loop().time()
    order = await _drain(stream, 25)
    took = asyncio.get_running_loop().time() - began
    await stream.close()

    # 20 jobs at 10 a second with a burst of 1 take at least 1.9 s, however fast the machine.
    assert took >= 1.9 * 0.95, took
    assert order.count("slow") == 20
    assert {job.job.id for job in stream.jobs} >= set(others)
    # The other group has a bucket of its own: its 5 jobs are not spread over the slow one's 2 s.
    assert max(i for i, group in enumerate(order) if group == "other") < 12


async def test_a_grouped_job_keeps_its_group_through_every_transition(stub: Stub) -> None:
    await _limits(stub, "g", group_max_active=1)
    (first,) = await _enqueue_group(stub, "g", "a", 1, max_attempts=2)
    (delayed,) = await _enqueue_group(stub, "g", "a", 1, delay={"nanos": 1_000_000})
    (cancelled,) = await _enqueue_group(stub, "g", "b", 1)
    await stub.Cancel(svc.CancelRequest(job_id=cancelled))
    status = (await stub.GetStatus(svc.GetStatusRequest(job_id=first))).job
    assert status.group_key == "a"
    await wait_for_state(stub, delayed, job_pb2.JOB_STATE_QUEUED)  # promoted into its group
    assert (await stub.Stats(svc.StatsRequest(queue="g"))).queues[0].queued == 2

    # A stream that ends gives its job back to the front of its group.
    stream = await LeaseStream(stub).subscribe("g", max_in_flight=5)
    (leased,) = await stream.wait_jobs(1)
    assert leased.job.id == first
    await stream.close()
    stream = await LeaseStream(stub).subscribe("g", max_in_flight=5)
    (again,) = await stream.wait_jobs(1)
    assert again.job.id == first  # before `delayed`, and alone: the group runs one at a time
    await stream.fail(again, "boom")  # its last attempt: dead, which frees the group
    (following,) = (await stream.wait_jobs(2))[1:]
    assert following.job.id == delayed
    await stream.ack(following)
    await stream.wait_confirmations(2)

    await stub.Retry(svc.RetryRequest(job_id=first))  # back into its group
    (retried,) = (await stream.wait_jobs(3))[2:]
    assert retried.job.id == first
    await stream.ack(retried)
    await stream.close()
    stats = (await stub.Stats(svc.StatsRequest(queue="g"))).queues[0]
    assert (stats.queued, stats.active, stats.completed) == (0, 0, 2)
    assert stats.limits.group_max_active == 1


@pytest.mark.parametrize("field", ["group_rate_per_second", "group_max_active", "group_burst"])
async def test_bad_group_limits_are_refused_naming_the_field(stub: Stub, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _limits(stub, "q", **{field: -1})
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"limits.{field}" in (refused.value.details() or "")
