"""The worker across failures: the server restarts, Redis restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from jobqueue import AsyncClient, EnqueueResult, JobContext, JobState
from jobqueue.errors import Unavailable
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests import support
from tests.client.conftest import WorkerRunner, eventually, stop_app

Restart = Callable[[], Awaitable[App]]


@pytest.fixture
async def restart_server(server: App, settings: ServerSettings, redis: Redis) -> AsyncIterator[Restart]:
    """Stops the server at once, then starts a new one on the same port and keys."""
    started: list[App] = []

    async def restart() -> App:
        await stop_app(server)
        same_port = settings.model_copy(update={"port": server.port})
        started.append(await start_app(same_port, Store(redis, store_config(same_port))))
        return started[-1]

    yield restart
    for app in started:
        await stop_app(app)


async def enqueue_when_reachable(client: AsyncClient, queue: str, payload: dict[str, Any]) -> EnqueueResult:
    """What a producer does across a restart: retry UNAVAILABLE with the same idempotency key
    (the client's channel may still be backing off from the old server's connection)."""
    key = f"restart-{payload}"
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        try:
            return await client.enqueue(queue, payload, idempotency_key=key)
        except Unavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_the_worker_reconnects_after_the_server_restarts(
    client: AsyncClient, workers: WorkerRunner, queue: str, restart_server: Restart
) -> None:
    worker = workers.new(handlers={queue: lambda payload, ctx: {"n": payload["n"]}})
    workers.start(worker)
    before = await client.enqueue(queue, {"n": 1})
    assert (await client.wait(before.job_id, timeout=10)).state == JobState.COMPLETED

    await restart_server()
    after = await enqueue_when_reachable(client, queue, {"n": 2})
    job = await client.wait(after.job_id, timeout=10)

    assert (job.state, job.result) == (JobState.COMPLETED, {"n": 2})
    assert worker.counters.connections >= 2


async def test_a_job_running_when_the_stream_drops_is_abandoned_and_runs_again(
    client: AsyncClient, workers: WorkerRunner, queue: str, restart_server: Restart
) -> None:
    worker = workers.new()
    first_attempt = asyncio.Event()
    cancelled = asyncio.Event()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if ctx.attempt == 1:
            first_attempt.set()
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()
        return {"attempt": ctx.attempt}

    workers.start(worker)
    result = await client.enqueue(queue)
    await asyncio.wait_for(first_attempt.wait(), 10)

    await restart_server()
    job = await client.wait(result.job_id, timeout=10)

    assert cancelled.is_set()
    assert (job.state, job.result, job.attempts) == (JobState.COMPLETED, {"attempt": 2}, 2)
    assert worker.counters.abandoned == 1 and worker.counters.rejected == 0


@pytest.mark.restarts_redis
async def test_an_ack_refused_while_redis_is_down_is_sent_again(
    client: AsyncClient, workers: WorkerRunner, queue: str, test_redis: support.TestRedis
) -> None:
    if not test_redis.controllable:
        pytest.skip("the suite runs against an external Redis")
    worker = workers.new()
    started = asyncio.Event()
    release = asyncio.Event()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"ok": True}

    workers.start(worker)
    result = await client.enqueue(queue)
    await asyncio.wait_for(started.wait(), 10)

    await asyncio.to_thread(test_redis.stop)
    try:
        release.set()
        await eventually(lambda: worker.counters.resent >= 1)
    finally:
        await asyncio.to_thread(test_redis.start)
    job = await client.wait(result.job_id, timeout=15)

    assert (job.state, job.result, job.attempts) == (JobState.COMPLETED, {"ok": True}, 1)
    # The ack's confirmation reaches the worker a moment after the job is COMPLETED.
    await eventually(lambda: worker.counters.succeeded == 1)
    assert worker.counters.rejected == 0
