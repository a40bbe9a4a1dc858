"""Graceful stop: no new streams or deliveries, held jobs settled or released."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import code_pb2

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.runtime.app import App
from tests.server.streams import LeaseStream
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def test_a_stopping_server_refuses_new_streams_but_takes_acks_on_open_ones(
    app: App, stub: Stub
) -> None:
    for _ in range(3):
        await stub.Enqueue(svc.EnqueueRequest(queue="q"))
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=2)
    first, second = await stream.wait_jobs(2)

    stopping = asyncio.create_task(app.stop(grace_s=30))
    late = await LeaseStream(stub).subscribe("q")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await late.wait_jobs(1)
    await stream.ack(first, second)
    confirmations = await stream.wait_confirmations(2)
    await asyncio.wait_for(stopping, timeout=10)

    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(refused.value) == "SERVER_SHUTTING_DOWN"
    assert [c.status.code for c in confirmations] == [code_pb2.OK, code_pb2.OK]
    assert len(stream.jobs) == 2  # the third job was not delivered while draining


async def test_jobs_still_held_when_the_grace_period_ends_are_released(app: App, stub: Stub) -> None:
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id
    stream = await LeaseStream(stub).subscribe("q", lease_ms=600_000)
    await stream.wait_jobs(1)

    await app.stop(grace_s=0.2)

    job = await app.store.get(job_id)
    assert (job.state, job.attempts, job.last_error) == ("queued", 1, "lease released: stream closed")
