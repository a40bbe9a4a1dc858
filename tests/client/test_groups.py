"""Groups from the Python client and runtime: with group_max_active=1 a worker with room for
many jobs still runs one job per group at a time, and the groups share it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from jobqueue import AsyncClient, JobContext
from tests.client.conftest import WorkerRunner


async def test_one_running_job_per_group_however_much_room_the_worker_has(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    await client.set_queue_limits(queue, group_max_active=1)
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()

    async def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        group = ctx.job.group_key or ""
        running[group] += 1
        most[group] = max(most[group], running[group])
        await asyncio.sleep(0.01)  # long enough for a second job of the group to start, if let
        running[group] -= 1

    workers.start(workers.new(handlers={queue: handler}, concurrency=8))
    jobs = [await client.enqueue(queue, {}, group_key=f"customer-{n % 3}") for n in range(15)]
    for job in jobs:
        await client.wait(job.job_id, timeout=20)

    assert most == Counter({"customer-0": 1, "customer-1": 1, "customer-2": 1})
    (stats,) = await client.stats(queue)
    assert stats.limits is not None and stats.limits.group_max_active == 1
