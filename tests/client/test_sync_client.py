"""Client (blocking) against the in-process server.

The server runs on the test's event loop, so every blocking call goes through
asyncio.to_thread: calling it on the loop's thread would wait for a server that cannot run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from jobqueue import Client, InvalidArgument, JobSpec, JobState, NotFound, WrongState
from tests.client.conftest import WorkerRunner

UNKNOWN_JOB = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def test_enqueue_get_and_stats(sync_client: Client, queue: str) -> None:
    result = await asyncio.to_thread(
        sync_client.enqueue, queue, {"n": 1}, priority="low", delay=timedelta(hours=1)
    )
    job = await asyncio.to_thread(sync_client.get, result.job_id)
    (stats,) = await asyncio.to_thread(sync_client.stats, queue)

    assert (job.id, job.state, job.payload) == (result.job_id, JobState.SCHEDULED, {"n": 1})
    assert (stats.queue, stats.scheduled, stats.queued) == (queue, 1, 0)


async def test_enqueue_many_then_cancel_and_retry(sync_client: Client, queue: str) -> None:
    results = await asyncio.to_thread(
        sync_client.enqueue_many, [JobSpec(queue=queue, delay=3600), {"queue": queue, "payload": b"raw"}]
    )
    await asyncio.to_thread(sync_client.cancel, results[0].job_id)
    cancelled = await asyncio.to_thread(sync_client.wait, results[0].job_id, timeout=5)
    await asyncio.to_thread(sync_client.retry, results[0].job_id)

    assert cancelled.state == JobState.CANCELLED
    assert (await asyncio.to_thread(sync_client.get, results[0].job_id)).state == JobState.QUEUED
    assert (await asyncio.to_thread(sync_client.get, results[1].job_id)).payload_bytes == b"raw"


async def test_wait_returns_the_completed_job(sync_client: Client, workers: WorkerRunner, queue: str) -> None:
    workers.start(workers.new(handlers={queue: lambda payload, ctx: {"ok": payload["n"]}}))

    result = await asyncio.to_thread(sync_client.enqueue, queue, {"n": 3})
    job = await asyncio.to_thread(sync_client.wait, result.job_id, timeout=10)

    assert (job.state, job.result) == (JobState.COMPLETED, {"ok": 3})
    with pytest.raises(WrongState):
        await asyncio.to_thread(sync_client.cancel, result.job_id)


async def test_wait_raises_timeout_error(sync_client: Client, queue: str) -> None:
    result = await asyncio.to_thread(sync_client.enqueue, queue, delay=3600)

    with pytest.raises(TimeoutError):
        await asyncio.to_thread(sync_client.wait, result.job_id, timeout=0.2)


async def test_failures_are_typed_errors(sync_client: Client) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await asyncio.to_thread(sync_client.enqueue, "bad queue!")
    assert caught.value.field == "queue"

    with pytest.raises(NotFound):
        await asyncio.to_thread(sync_client.get, UNKNOWN_JOB)
