"""Running jobs from the Python runtime and client: Cancel stops an async handler (and a plain
one sees ctx.stopped); a job past its execution timeout is stopped and fails as timed out;
ctx.progress and ctx.log reach GetStatus; watch() follows a job to its end and wait() uses it."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue import AsyncClient, JobContext, JobState, QueueLimits
from tests.client.conftest import WorkerRunner, eventually


async def test_cancel_stops_an_async_handler_and_the_worker_goes_on(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()
    seen: list[str | None] = []

    async def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if payload.get("block"):
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                seen.append(ctx.stop_reason)
                stopped.set()
                raise
        return {"ran": True}

    workers.start(workers.new(handlers={queue: handler}, concurrency=1))
    blocked = await client.enqueue(queue, {"block": True})
    await asyncio.wait_for(started.wait(), 10)

    await client.cancel(blocked.job_id)

    await asyncio.wait_for(stopped.wait(), 10)
    assert seen == ["cancelled"]
    assert (await client.get(blocked.job_id)).state is JobState.CANCELLED
    after = await client.enqueue(queue, {})  # the only slot is free again
    assert (await client.wait(after.job_id, timeout=10)).result == {"ran": True}


async def test_a_plain_handler_sees_ctx_stopped(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    started, seen = threading.Event(), threading.Event()

    def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        deadline = time.monotonic() + 30
        while not ctx.stopped and time.monotonic() < deadline:
            time.sleep(0.01)
        if ctx.stop_reason == "cancelled":
            seen.set()

    workers.start(workers.new(handlers={queue: handler}, concurrency=1))
    job = await client.enqueue(queue, {})
    await asyncio.to_thread(started.wait, 10)
    await client.cancel(job.job_id)

    assert await asyncio.to_thread(seen.wait, 10)


async def test_a_job_past_its_execution_timeout_is_stopped_and_fails_as_timed_out(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    reasons: list[str | None] = []

    async def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        try:
            await asyncio.sleep(60)  # the worker keeps extending the lease meanwhile
        except asyncio.CancelledError:
            reasons.append(ctx.stop_reason)
            raise

    workers.start(workers.new(handlers={queue: handler}, lease_duration=timedelta(seconds=10)))
    job = await client.enqueue(queue, {}, execution_timeout=1, max_attempts=1)

    done = await client.wait(job.job_id, timeout=20)

    assert done.state is JobState.DEAD and done.last_error == "timed out after 1 s"
    assert done.execution_timeout == timedelta(seconds=1)
    await eventually(lambda: reasons == ["timed_out"])


async def test_a_job_not_started_by_its_start_deadline_is_cancelled(client: AsyncClient, queue: str) -> None:
    job = await client.enqueue(queue, {}, start_deadline=datetime.now(UTC) + timedelta(milliseconds=300))

    done = await client.wait(job.job_id, timeout=10)

    assert done.state is JobState.CANCELLED and done.last_error == "not started before its start deadline"


async def test_progress_and_log_lines_reach_get_status_and_watch_follows_the_job(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    release = asyncio.Event()

    async def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        ctx.log("fetched the image")
        ctx.progress(40, "resizing")
        await release.wait()
        return {"ok": True}

    job = await client.enqueue(queue, {})
    states: list[tuple[JobState, float | None]] = []

    async def follow() -> None:
        async for seen in client.watch(job.job_id, timeout=20):
            states.append((seen.state, seen.progress.percent if seen.progress else None))
            if seen.progress is not None and seen.progress.percent == 40:
                release.set()

    watching = asyncio.create_task(follow())
    workers.start(workers.new(handlers={queue: handler}))
    await asyncio.wait_for(watching, 20)

    assert states[0] == (JobState.QUEUED, None)
    assert (JobState.ACTIVE, 40) in states and states[-1][0] is JobState.COMPLETED
    finished = await client.get(job.job_id)
    assert finished.progress is not None and finished.progress.message == "resizing"
    assert [entry.line for entry in finished.logs] == ["fetched the image"]


async def test_a_unique_key_returns_the_pending_job_until_it_ends(client: AsyncClient, queue: str) -> None:
    first = await client.enqueue(queue, {"n": 1}, unique_key="invoice-7")
    again = await client.enqueue(queue, {"n": 2}, unique_key="invoice-7")
    assert again.job_id == first.job_id and again.duplicate
    assert (await client.get(first.job_id)).unique_key == "invoice-7"

    await client.cancel(first.job_id)
    after = await client.enqueue(queue, {"n": 3}, unique_key="invoice-7")

    assert after.job_id != first.job_id and not after.duplicate


async def test_queue_limits_are_set_shown_in_stats_and_removed(client: AsyncClient, queue: str) -> None:
    await client.set_queue_limits(queue, rate_per_second=2.5, burst=3, max_active=4)
    (stats,) = await client.stats(queue)
    assert stats.limits == QueueLimits(2.5, 3, 4)

    await client.set_queue_limits(queue)
    (stats,) = await client.stats(queue)
    assert stats.limits is None
