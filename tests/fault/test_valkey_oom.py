"""Valkey out of memory, process level: with a small maxmemory and noeviction, enqueues are
refused with RESOURCE_EXHAUSTED, nothing acknowledged is lost, and once memory is freed every
acknowledged job completes without restarting anything.

(tests/server/test_redis_outage.py checks the status mapping in process; here the servers
and workers are real processes and the workers keep running while Valkey is full.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import pytest

from jobqueue import AsyncClient, JobSpec, ResourceExhausted
from tests.fault.checker import read_jobs
from tests.fault.cluster import ClusterConfig, running_cluster
from tests.fault.fault_worker import QUEUE

pytestmark = pytest.mark.fault

HEADROOM_BYTES = 4 * 1024 * 1024
FILLER = "x" * 2048
BATCH = 50
MAX_BATCHES = 2000
RESUME_BOUND_S = 20.0


def batch(n: int) -> list[JobSpec]:
    return [
        JobSpec(
            queue=QUEUE, payload={"filler": FILLER, "n": n * BATCH + i}, max_attempts=50, lease_duration=2.0
        )
        for i in range(BATCH)
    ]


async def fill(client: AsyncClient) -> tuple[list[str], ResourceExhausted]:
    """Enqueues until Valkey refuses; returns the acknowledged ids and the refusal."""
    acknowledged: list[str] = []
    for n in range(MAX_BATCHES):
        try:
            acknowledged += [r.job_id for r in await client.enqueue_many(batch(n))]
        except ResourceExhausted as error:
            return acknowledged, error
    raise AssertionError(f"{MAX_BATCHES * BATCH} jobs fitted in maxmemory: the limit did not apply")


@pytest.mark.timeout(180)
async def test_a_full_valkey_refuses_enqueues_loses_nothing_and_recovers_when_memory_frees(
    tmp_path: Path,
) -> None:
    config = ClusterConfig(servers=1, workers=2, concurrency=4)
    async with running_cluster(config, tmp_path) as cluster, AsyncClient(cluster.target) as client:
        async with cluster.redis() as redis:
            used = int((await redis.info("memory"))["used_memory"])
            await redis.config_set("maxmemory", str(used + HEADROOM_BYTES))

            acknowledged, refusal = await fill(client)
            assert refusal.code.name == "RESOURCE_EXHAUSTED"
            assert refusal.reason == "STORE_FULL"
            await asyncio.sleep(3)  # workers keep running against a full Valkey meanwhile
            with pytest.raises(ResourceExhausted):
                await client.enqueue_many(batch(MAX_BATCHES))

            freed = time.monotonic()
            await redis.config_set("maxmemory", "0")

        acknowledged += [r.job_id for r in await client.enqueue_many(batch(MAX_BATCHES + 1))]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RESUME_BOUND_S):
                while (await client.stats(QUEUE))[0].completed < len(acknowledged):
                    await asyncio.sleep(0.2)
        resumed_s = time.monotonic() - freed
        jobs = await read_jobs(cluster.target, acknowledged)
        stats = await client.stats(QUEUE)

    states = Counter(str(job.state) if job else "missing" for job in jobs.values())
    print(f"{len(acknowledged)} acknowledged; {resumed_s:.1f} s after memory was freed: {states}; {stats}")
    assert states == {"completed": len(acknowledged)}
