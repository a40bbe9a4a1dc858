"""`jobq serve` as a real process: embedded Valkey, reflection, health, graceful SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from redis import exceptions as redis_errors
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.store import JobState, Store, StoreConfig
from tests.processes import ServeProcess, children_of, gone, wait_until
from tests.server.streams import LeaseStream, payload
from tests.support import TestRedis


def terminate(server: ServeProcess) -> tuple[int, str]:
    """SIGTERM, then the exit code and everything the server printed."""
    server.send_signal(signal.SIGTERM)
    return server.wait(), server.output


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(["--data-dir", str(tmp_path)])
    yield server
    server.close()


async def test_serve_with_embedded_valkey_answers_and_stops_cleanly(
    embedded: ServeProcess, tmp_path: Path
) -> None:
    async with grpc.aio.insecure_channel(embedded.target) as channel:
        stub = svc_grpc.JobQueueServiceStub(channel)
        request = svc.EnqueueRequest(
            queue="emails", payload=payload(to="user@example.com", subject="Welcome!")
        )
        job_id = (await stub.Enqueue(request)).job_id
        job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        services = await list_services(channel)

    assert job.state == job_pb2.JOB_STATE_QUEUED and job.payload["subject"] == "Welcome!"
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert {"jobqueue.v1.JobQueueService", "grpc.health.v1.Health"} <= services
    code, output = terminate(embedded)
    assert code == 0, output
    assert (tmp_path / "valkey" / "appendonlydir").is_dir()
    client = Redis.from_url(embedded.redis_url)
    with pytest.raises(redis_errors.ConnectionError):  # the embedded Valkey stopped with it
        await client.ping()
    await client.aclose()


async def test_a_killed_server_takes_its_embedded_valkey_along_and_the_next_finds_the_jobs(
    tmp_path: Path,
) -> None:
    first = ServeProcess(["--data-dir", str(tmp_path)])
    try:
        (valkey,) = children_of(first.process.pid)
        async with grpc.aio.insecure_channel(first.target) as channel:
            stub = svc_grpc.JobQueueServiceStub(channel)
            job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="kept"))).job_id
    finally:
        first.close()  # SIGKILL: the server gets no chance to stop Valkey itself

    # Left running, it would hold the folder, and the next server would start a second Valkey
    # on the same append-only file.
    wait_until(lambda: gone(valkey), "the embedded valkey to stop with its server")
    second = ServeProcess(["--data-dir", str(tmp_path)])
    try:
        async with grpc.aio.insecure_channel(second.target) as channel:
            stub = svc_grpc.JobQueueServiceStub(channel)
            job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
        assert job.state == job_pb2.JOB_STATE_QUEUED
    finally:
        second.close()


async def list_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    response = await call.read()
    await call.done_writing()
    return {s.name for s in response.list_services_response.service}


async def test_sigterm_releases_jobs_held_by_open_streams_and_exits_zero(
    test_redis: TestRedis, key_prefix: str, redis: Redis, tmp_path: Path
) -> None:
    server = ServeProcess(
        ["--redis-url", test_redis.url], {"JOBQ_KEY_PREFIX": key_prefix, "JOBQ_SHUTDOWN_GRACE_SECONDS": "0.5"}
    )
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = svc_grpc.JobQueueServiceStub(channel)
            job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id
            stream = await LeaseStream(stub).subscribe("q", lease_ms=600_000)
            await stream.wait_jobs(1)

            code, output = terminate(server)
    finally:
        server.close()

    assert code == 0, output
    job = await Store(redis, StoreConfig(key_prefix=key_prefix)).get(job_id)
    assert job.state == JobState.QUEUED and job.attempts == 1


async def test_serve_warns_when_redis_may_evict_jobs(
    test_redis: TestRedis, redis: Redis, key_prefix: str
) -> None:
    if not test_redis.controllable:
        pytest.skip("changes the configuration of the suite's own Redis")
    await redis.config_set("maxmemory-policy", "allkeys-lru")
    try:
        server = ServeProcess(["--redis-url", test_redis.url], {"JOBQ_KEY_PREFIX": key_prefix})
    finally:
        await redis.config_set("maxmemory-policy", "noeviction")
    try:
        code, output = terminate(server)
    finally:
        server.close()

    assert code == 0, output
    assert "maxmemory-policy is 'allkeys-lru'" in output
