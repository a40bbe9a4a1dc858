"""Redis stopped: calls end promptly with UNAVAILABLE, health says NOT_SERVING, and service
resumes by itself when Redis returns, with the jobs it had (AOF)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.runtime.app import App
from tests.server.streams import LeaseStream
from tests.server.test_unary_calls import error_reason
from tests.support import TestRedis

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

pytestmark = pytest.mark.restarts_redis


async def health_status(app: App) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="jobqueue.v1.JobQueueService"), timeout=5
        )
    return int(response.status)


async def wait_health(app: App, status: int) -> None:
    async with asyncio.timeout(10):
        while await health_status(app) != status:
            await asyncio.sleep(0.05)


async def test_calls_fail_fast_with_unavailable_and_recover_when_redis_returns(
    app: App, stub: Stub, test_redis: TestRedis, stopped_redis: TestRedis
) -> None:
    # The job enqueued before the outage survives it (AOF, same data folder).
    stopped_redis.start()
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id
    stopped_redis.stop()

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Enqueue(svc.EnqueueRequest(queue="q"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    await wait_health(app, health_pb2.HealthCheckResponse.NOT_SERVING)

    stopped_redis.start()

    await wait_health(app, health_pb2.HealthCheckResponse.SERVING)
    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert job.state == job_pb2.JOB_STATE_QUEUED
    stream = await LeaseStream(stub).subscribe("q")
    (leased,) = await stream.wait_jobs(1)
    assert leased.job.id == job_id
    await stream.close()


async def test_an_open_stream_survives_an_outage_and_gets_new_jobs_after(
    app: App, stub: Stub, stopped_redis: TestRedis
) -> None:
    stopped_redis.start()
    stream = await LeaseStream(stub).subscribe("q")
    stopped_redis.stop()
    await wait_health(app, health_pb2.HealthCheckResponse.NOT_SERVING)

    stopped_redis.start()
    await wait_health(app, health_pb2.HealthCheckResponse.SERVING)
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id

    (leased,) = await stream.wait_jobs(1)
    assert leased.job.id == job_id
    await stream.close()


async def test_a_full_redis_refuses_enqueues_with_resource_exhausted_and_keeps_what_it_has(
    stub: Stub, redis: Redis, test_redis: TestRedis
) -> None:
    if not test_redis.controllable:
        pytest.skip("changes the configuration of the suite's own Redis")
    kept = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id
    await redis.config_set("maxmemory", "1")  # below what is used: every write is refused
    try:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Enqueue(svc.EnqueueRequest(queue="q"))
    finally:
        await redis.config_set("maxmemory", "0")

    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_reason(raised.value) == "STORE_FULL"
    assert (await stub.GetStatus(svc.GetStatusRequest(job_id=kept))).job.state == job_pb2.JOB_STATE_QUEUED
    assert (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id  # and it works again
