"""Valkey down, process level: calls end with UNAVAILABLE within their deadline, every server's
health says NOT_SERVING, and within 5 s of Valkey's return (kill -9, restarted on its port and
AOF) service resumes — scripts reloaded, health SERVING, new jobs run by the same worker
process — without restarting any server or worker. Jobs acknowledged before the outage finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from jobqueue import AsyncClient, JobSpec, JobState, Unavailable
from tests.fault.checker import read_jobs
from tests.fault.cluster import Cluster, ClusterConfig, running_cluster
from tests.fault.fault_worker import QUEUE

pytestmark = pytest.mark.fault

CALL_DEADLINE_S = 2.0
# The deadline plus scheduling noise on a loaded 2-core machine.
DEADLINE_SLACK_S = 1.0
RESUME_BOUND_S = 5.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def health(target: str) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="jobqueue.v1.JobQueueService"), timeout=CALL_DEADLINE_S
        )
    return int(response.status)


async def all_health(cluster: Cluster) -> set[int]:
    return {await health(server.target) for server in cluster.servers if server is not None}


async def until(seconds: float, check: Callable[[], Awaitable[bool]]) -> None:
    """Polls `check` until it returns True; TimeoutError after `seconds`."""
    async with asyncio.timeout(seconds):
        while not await check():
            await asyncio.sleep(0.05)


async def enqueue_when_back(client: AsyncClient) -> str:
    while True:
        try:
            return (await client.enqueue(QUEUE, {"n": -1}, timeout=CALL_DEADLINE_S)).job_id
        except Unavailable:
            await asyncio.sleep(0.05)


@pytest.mark.timeout(180)
async def test_calls_fail_within_their_deadline_and_service_resumes_when_valkey_returns(
    tmp_path: Path,
) -> None:
    async with running_cluster(ClusterConfig(servers=2, workers=1), tmp_path) as cluster:
        worker_pid = cluster.workers[0].pid
        async with AsyncClient(cluster.target) as client:
            # Fsynced: under appendfsync everysec Valkey may hold back its AOF write while a
            # background fsync runs, so a SIGKILL right after an applied write can lose it.
            specs = [JobSpec(queue=QUEUE, payload={"sleep_ms": 20})] * 200
            before = [r.job_id for r in await client.enqueue_many(specs, durability="fsynced")]
            await cluster.kill_valkey()

            for call in (
                lambda: client.enqueue(QUEUE, {}, timeout=CALL_DEADLINE_S),
                lambda: client.get(before[0], timeout=CALL_DEADLINE_S),
                lambda: client.stats(QUEUE, timeout=CALL_DEADLINE_S),
            ):
                started = time.monotonic()
                with pytest.raises(Unavailable):
                    await call()
                assert time.monotonic() - started < CALL_DEADLINE_S + DEADLINE_SLACK_S
            await until(5.0, lambda: _equals(all_health(cluster), {NOT_SERVING}))

            await cluster.start_valkey()
            back = time.monotonic()
            after = await enqueue_when_back(client)
            await until(RESUME_BOUND_S, lambda: _equals(all_health(cluster), {SERVING}))
            await until(RESUME_BOUND_S, lambda: _completed(client, after))
            resumed_s = time.monotonic() - back

            await until(30.0, lambda: _all_finished(client, len(before) + 1))
            jobs = await read_jobs(cluster.target, [*before, after])
        assert cluster.workers[0].pid == worker_pid and not cluster.worker_exited(0)
        assert all(server is not None and server.process.poll() is None for server in cluster.servers)

    print(f"service resumed {resumed_s:.2f} s after valkey returned")
    assert resumed_s < RESUME_BOUND_S
    assert all(job is not None and job.state is JobState.COMPLETED for job in jobs.values())


async def _equals(statuses: Awaitable[set[int]], expected: set[int]) -> bool:
    try:
        return await statuses == expected
    except grpc.aio.AioRpcError:
        return False


async def _completed(client: AsyncClient, job_id: str) -> bool:
    return (await client.get(job_id)).state is JobState.COMPLETED


async def _all_finished(client: AsyncClient, count: int) -> bool:
    (stats,) = await client.stats(QUEUE)
    return stats.completed >= count
