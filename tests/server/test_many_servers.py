"""Two servers on one Redis, many workers: every job is completed exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import LeaseStream, payload

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

JOBS = 600
WORKERS_PER_SERVER = 4


async def drain(stub: Stub, handled: Counter[str], done: asyncio.Event) -> None:
    """A worker: acks whatever it gets; half-closes its stream once every job was handled."""
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=16)

    async def close_when_done() -> None:
        await done.wait()
        await stream.call.done_writing()

    closer = asyncio.create_task(close_when_done())
    while (response := await stream.call.read()) is not grpc.aio.EOF:
        for job in response.jobs:
            handled[job.job.id] += 1
        if response.jobs and not done.is_set():
            await stream.ack(*response.jobs)
        if sum(handled.values()) >= JOBS:
            done.set()
    await closer


async def test_two_servers_and_eight_workers_complete_every_job_exactly_once(
    stub: Stub, second_stub: Stub
) -> None:
    requests = [svc.EnqueueRequest(queue="q", payload=payload(n=n)) for n in range(JOBS)]
    half = JOBS // 2
    await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests[:half]))
    handled: Counter[str] = Counter()
    done = asyncio.Event()
    workers = [
        asyncio.create_task(drain(s, handled, done))
        for s in (stub, second_stub)
        for _ in range(WORKERS_PER_SERVER)
    ]
    await second_stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests[half:]))

    async with asyncio.timeout(60):
        await done.wait()
        await asyncio.gather(*workers)

    assert len(handled) == JOBS
    assert set(handled.values()) == {1}
    async with asyncio.timeout(10):
        while (await stub.Stats(svc.StatsRequest(queue="q"))).queues[0].completed < JOBS:
            await asyncio.sleep(0.05)
    stats = (await stub.Stats(svc.StatsRequest(queue="q"))).queues[0]
    assert (stats.completed, stats.queued, stats.active) == (JOBS, 0, 0)
