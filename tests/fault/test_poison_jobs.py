"""Poison jobs, process level: a job that kills its worker and one that always raises both
reach DEAD after max_attempts, while the ordinary jobs around them all complete.

A worker killed by a poison job takes the other jobs it held down with it; those are
delivered again (their attempt counted), so ordinary jobs get a higher max_attempts here.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from jobqueue import AsyncClient, BackoffPolicy, JobSpec, JobState
from tests.fault.checker import read_jobs
from tests.fault.cluster import ClusterConfig, running_cluster
from tests.fault.fault_worker import QUEUE

pytestmark = pytest.mark.fault

POISON_ATTEMPTS = 3
QUICK_RETRY = BackoffPolicy(initial_delay=0.05, max_delay=0.2, no_jitter=True)


def specs() -> list[JobSpec]:
    def spec(payload: dict[str, object], attempts: int) -> JobSpec:
        return JobSpec(
            queue=QUEUE, payload=payload, max_attempts=attempts, backoff=QUICK_RETRY, lease_duration=2.0
        )

    kill = [spec({"poison": "kill"}, POISON_ATTEMPTS) for _ in range(4)]
    raise_ = [spec({"poison": "raise"}, POISON_ATTEMPTS) for _ in range(4)]
    ordinary = [spec({"sleep_ms": 5}, 20) for _ in range(400)]
    # Interleaved, so poison arrives while ordinary work is in flight.
    return [job for group in zip(ordinary[:8], kill + raise_, strict=True) for job in group] + ordinary[8:]


async def wait_finished(client: AsyncClient, job_ids: list[str], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            (stats,) = await client.stats(QUEUE)
            if stats.completed + stats.dead >= len(job_ids):
                return
            await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_poison_jobs_die_after_max_attempts_and_other_jobs_keep_flowing(tmp_path: Path) -> None:
    config = ClusterConfig(servers=1, workers=3, concurrency=4)
    async with running_cluster(config, tmp_path) as cluster:
        supervisor = asyncio.create_task(cluster.supervise())
        try:
            async with AsyncClient(cluster.target) as client:
                job_ids = [result.job_id for result in await client.enqueue_many(specs())]
                await wait_finished(client, job_ids, timeout_s=150)
            jobs = await read_jobs(cluster.target, job_ids)
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        restarts = sum(slot.generation - 1 for slot in cluster.workers)

    poison = [job for job in jobs.values() if job is not None and "poison" in job.payload]
    ordinary = [job for job in jobs.values() if job is not None and "poison" not in job.payload]
    assert len(poison) == 8 and len(ordinary) == 400
    assert all(job.state is JobState.DEAD and job.attempts == POISON_ATTEMPTS for job in poison), [
        (job.payload, job.state, job.attempts) for job in poison
    ]
    assert all(job.state is JobState.COMPLETED for job in ordinary)
    # Each delivery of a killing job took its worker down (two may share one) and the
    # supervisor replaced it.
    assert restarts >= POISON_ATTEMPTS
