"""The clients' `durability` and the worker's `ack_durability`: fsynced writes wait for the disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from jobqueue import AsyncClient, Client, Durability, InvalidArgument, JobContext, JobSpec, JobState, Worker
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import start_app, store_config
from jobqueue_server.store import Store
from tests.client.conftest import WorkerRunner, eventually, stop_app
from tests.server.test_durability import has_waitaof, waitaof_calls


@pytest.fixture
async def waitaof(redis: Redis) -> None:
    if not await has_waitaof(redis):  # the suite's Valkey has it; Redis before 7.2 does not
        pytest.skip("needs WAITAOF (Redis 7.2+ or Valkey)")


@pytest.mark.usefixtures("waitaof")
async def test_an_fsynced_enqueue_waits_for_the_disk_and_a_default_one_does_not(
    client: AsyncClient, redis: Redis, queue: str
) -> None:
    await client.enqueue(queue, {"warm": "up"}, durability="fsynced")  # the server's capability check
    calls = await waitaof_calls(redis)

    fsynced = await client.enqueue(queue, {"n": 1}, durability=Durability.FSYNCED)
    after_fsynced = await waitaof_calls(redis)
    await client.enqueue(queue, {"n": 2})
    await client.enqueue(queue, {"n": 3}, durability="applied")

    assert after_fsynced == calls + 1
    assert await waitaof_calls(redis) == after_fsynced
    assert (await client.get(fsynced.job_id)).state == JobState.QUEUED


@pytest.mark.usefixtures("waitaof")
async def test_enqueue_many_waits_once_per_call(client: AsyncClient, redis: Redis, queue: str) -> None:
    await client.enqueue(queue, durability="fsynced")
    calls = await waitaof_calls(redis)

    results = await client.enqueue_many(
        [JobSpec(queue=queue, payload={"n": n}) for n in range(5)], durability="fsynced"
    )

    assert len(results) == 5 and await waitaof_calls(redis) == calls + 1


async def test_an_unknown_level_is_refused_before_anything_is_sent(client: AsyncClient, queue: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await client.enqueue(queue, {"n": 1}, durability="disk")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        await client.enqueue_many([JobSpec(queue=queue)], durability="always")  # type: ignore[arg-type]

    assert refused.value.field == "durability"
    assert (await client.stats(queue))[0].queued == 0


@pytest.mark.usefixtures("waitaof")
async def test_the_sync_client_takes_the_same_option(sync_client: Client, redis: Redis, queue: str) -> None:
    await asyncio.to_thread(sync_client.enqueue, queue, durability="fsynced")  # the server shares this loop
    calls = await waitaof_calls(redis)

    await asyncio.to_thread(sync_client.enqueue, queue, {"n": 1}, durability="fsynced")

    assert await waitaof_calls(redis) == calls + 1


@pytest.mark.usefixtures("waitaof")
async def test_a_worker_with_fsynced_acks_completes_jobs_once_they_are_on_disk(
    client: AsyncClient, workers: WorkerRunner, redis: Redis, queue: str
) -> None:
    worker = workers.new(concurrency=2, ack_durability="fsynced")

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"n": payload["n"]}

    await client.enqueue(queue, {"n": 0})
    calls = await waitaof_calls(redis)
    workers.start(worker)
    job = await client.wait((await client.enqueue(queue, {"n": 1})).job_id, timeout=10)

    assert (job.state, job.result) == (JobState.COMPLETED, {"n": 1})
    assert await waitaof_calls(redis) > calls


def test_a_worker_refuses_an_unknown_ack_level(target: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Worker(target, ["q"], ack_durability="sometimes")  # type: ignore[arg-type]

    assert refused.value.field == "ack_durability"


@pytest.fixture
async def quick_fsync_target(redis: Redis, settings: ServerSettings) -> AsyncIterator[str]:
    """A server of the test's own that gives up on a disk confirmation after 0.3 s, on a
    Redis that fsyncs every write (so a confirmation that can come, comes at once)."""
    await redis.config_set("appendfsync", "always")
    quick = settings.model_copy(update={"fsync_timeout_seconds": 0.3})
    app = await start_app(quick, Store(redis, store_config(quick)))
    try:
        yield f"127.0.0.1:{app.port}"
    finally:
        await stop_app(app)
        await redis.config_set("appendfsync", "everysec")


@pytest.mark.usefixtures("waitaof")
async def test_an_ack_applied_but_not_confirmed_on_disk_counts_as_done_and_is_not_resent(
    quick_fsync_target: str, redis: Redis, queue: str
) -> None:
    runner = WorkerRunner(quick_fsync_target)
    worker = runner.new(concurrency=1, ack_durability="fsynced")
    worker.add_handler(queue, lambda payload, ctx: {"n": payload["n"]})
    runner.start(worker)
    try:
        async with AsyncClient(quick_fsync_target) as client:
            await client.wait((await client.enqueue(queue, {"n": 1})).job_id, timeout=10)
            await eventually(lambda: worker.counters.succeeded == 1)
            await redis.config_set("appendfsync", "no")  # WAITAOF now waits in vain
            second = await client.wait((await client.enqueue(queue, {"n": 2})).job_id, timeout=10)
            # FSYNC_NOT_CONFIRMED: the ack stands; sending it again could only be refused.
            await eventually(lambda: worker.counters.succeeded == 2)
    finally:
        await runner.stop_all()

    assert (second.state, second.result) == (JobState.COMPLETED, {"n": 2})
    assert (worker.counters.resent, worker.counters.rejected) == (0, 0)
