"""Idle costs nothing: idle streams wait on signals without polling Redis, a pass of the
maintenance loop runs no script on queues with nothing due, a missed signal is made good by the
pass, and the wake-up subscriptions of queues nobody watches any more are released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.maintenance import FULL_LOOK_EVERY
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.scripts import headers
from jobqueue_server.store.signals import QueueSignals
from tests.server.streams import LeaseStream
from tests.store.seed import update_record
from tests.support import not_on_cluster

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

QUEUES = [f"idle-{n}" for n in range(16)]
WAIT_S = 10.0


@pytest.fixture
async def quick_app(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    """A server whose maintenance pass runs every 50 ms: an idle cost would show at once."""
    quick = settings.model_copy(update={"sweep_interval_seconds": 0.05})
    running = await start_app(quick, Store(redis, store_config(quick)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def quick_stub(quick_app: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{quick_app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


async def _script_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


async def _passes(app: App, count: int) -> None:
    """Waits for `count` more maintenance passes (a condition, not a duration)."""
    target = app.maintenance.passes + count
    async with asyncio.timeout(WAIT_S):
        while app.maintenance.passes < target:
            await asyncio.sleep(0.01)


async def test_idle_streams_and_idle_queues_run_no_script(
    quick_app: App, quick_stub: Stub, redis: Redis
) -> None:
    for queue in QUEUES:  # known queues, each with a finished job well inside retention
        await quick_stub.Enqueue(svc.EnqueueRequest(queue=queue))
        await quick_stub.Cancel(svc.CancelRequest(job_id=(await _first_queued(quick_stub, queue))))
    streams = [await LeaseStream(quick_stub).subscribe(*QUEUES, max_in_flight=4) for _ in range(5)]
    for stream in streams:
        await stream.call.read()  # subscribed
    await _passes(quick_app, 2)  # the streams had their first, empty lease calls

    before = await _script_calls(redis)
    await _passes(quick_app, 10)

    assert await _script_calls(redis) - before == 0
    for stream in streams:
        await stream.close()


async def _command_calls(redis: Redis, command: str) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_idle_streams_on_many_queues_cost_no_command_per_queue_at_most_passes(
    quick_app: App, quick_stub: Stub, redis: Redis
) -> None:
    queues = [f"own-{n}" for n in range(40)]  # every stream its own queues, none ever enqueued to
    streams = [await LeaseStream(quick_stub).subscribe(*queues[n::4], max_in_flight=4) for n in range(4)]
    for stream in streams:
        await stream.call.read()  # subscribed
    await _passes(quick_app, 3)  # the subscriptions were made and looked at

    before = await _command_calls(redis, "exists")
    await _passes(quick_app, 2 * FULL_LOOK_EVERY)

    # A look at every watched queue (one EXISTS each) only every FULL_LOOK_EVERY passes.
    assert await _command_calls(redis, "exists") - before <= 3 * len(queues)
    for stream in streams:
        await stream.close()


async def _first_queued(stub: Stub, queue: str) -> str:
    page = await stub.ListJobs(svc.ListJobsRequest(queue=queue, state=job_pb2.JOB_STATE_QUEUED, page_size=1))
    return str(page.jobs[0].id)


async def test_a_job_whose_signal_was_missed_is_delivered_by_the_next_pass(
    quick_app: App, quick_stub: Stub, redis: Redis, settings: ServerSettings
) -> None:
    await quick_stub.Enqueue(svc.EnqueueRequest(queue="missed"))
    stream = await LeaseStream(quick_stub).subscribe("missed", max_in_flight=2)
    (first,) = await stream.wait_jobs(1)
    await _passes(quick_app, 1)
    # A job moved into the ready list with no signal published, as if the signal were lost.
    keys = QueueKeys.of(settings.key_prefix, "missed")
    (page_job,) = (
        await quick_stub.ListJobs(
            svc.ListJobsRequest(queue="missed", state=job_pb2.JOB_STATE_ACTIVE, page_size=1)
        )
    ).jobs
    ulid = page_job.id.rpartition(":")[2]
    await redis.zrem(keys.active, ulid)
    await update_record(redis, keys, ulid, state="queued", attempts=0, token="")
    await redis.lpush(keys.ready_normal, ulid)

    (again,) = (await stream.wait_jobs(2))[1:]

    assert again.job.id == first.job.id and again.job.attempts == 1
    await stream.close()


@not_on_cluster("counts commands and subscribers on one Redis node")
async def test_subscriptions_of_queues_nobody_watches_are_released(redis: Redis, key_prefix: str) -> None:
    signals = QueueSignals(redis, key_prefix, unsubscribe_after_s=0.1)
    listener = asyncio.create_task(signals.run())
    channel = QueueKeys.of(key_prefix, "gone").signal
    try:
        event = signals.watch(["gone"])
        await _numsub(redis, channel, 1)

        signals.unwatch(event, ["gone"])

        await _numsub(redis, channel, 0)
        assert signals.watched() == []
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


@not_on_cluster("counts commands and subscribers on one Redis node")
async def test_a_server_skips_the_wake_up_of_its_own_enqueues_and_acts_on_others(
    redis: Redis, key_prefix: str
) -> None:
    # Its servicer woke its streams when it wrote the jobs: a second wake-up would cost an idle
    # stream an empty lease call per job.
    signals = QueueSignals(redis, key_prefix, own_message="ready:this-server")
    listener = asyncio.create_task(signals.run())
    try:
        own, other = signals.watch(["own"]), signals.watch(["other"])
        for queue in ("own", "other"):
            await _numsub(redis, QueueKeys.of(key_prefix, queue).signal, 1)

        await redis.publish(QueueKeys.of(key_prefix, "own").signal, "ready:this-server")
        await redis.publish(QueueKeys.of(key_prefix, "other").signal, "ready:another-server")

        # One connection delivers the two messages in order: by the second, the first was seen.
        await asyncio.wait_for(other.wait(), WAIT_S)
        assert not own.is_set()
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def _numsub(redis: Redis, channel: str, expected: int) -> None:
    async with asyncio.timeout(WAIT_S):
        while dict(await redis.pubsub_numsub(channel)).get(channel.encode(), 0) != expected:
            await asyncio.sleep(0.02)


@pytest.fixture
async def slow_sweep_stub(redis: Redis, settings: ServerSettings) -> AsyncIterator[Stub]:
    """A server whose safety pass is a minute away: only a signal can wake its streams."""
    slow = settings.model_copy(update={"sweep_interval_seconds": 60.0})
    running = await start_app(slow, Store(redis, store_config(slow)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)
    await running.stop(grace_s=0)


@pytest.mark.parametrize("rounds", [5])
async def test_after_an_ack_finds_the_queue_empty_the_next_job_still_wakes_the_stream(
    slow_sweep_stub: Stub, rounds: int
) -> None:
    stream = await LeaseStream(slow_sweep_stub).subscribe("one-by-one", max_in_flight=1)
    for n in range(rounds):
        await slow_sweep_stub.Enqueue(svc.EnqueueRequest(queue="one-by-one"))
        (leased,) = (await stream.wait_jobs(n + 1, timeout_s=5.0))[n:]
        await stream.ack(leased)  # the ack's refill finds the queue empty
        await stream.wait_confirmations(n + 1)
    await stream.close()


@not_on_cluster("counts commands and subscribers on one Redis node")
async def test_an_idle_stream_makes_one_lease_call_per_job_it_is_woken_for(
    slow_sweep_stub: Stub, redis: Redis
) -> None:
    # The lease is written on the wake-up itself, right behind the enqueue (lease_session.py);
    # a stream that got less than it asked for waits for the next signal without another call.
    stream = await LeaseStream(slow_sweep_stub).subscribe("woken", max_in_flight=8)
    await stream.call.read()  # subscribed
    await slow_sweep_stub.Enqueue(svc.EnqueueRequest(queue="warm-up"))  # connections made
    before = await _command_calls(redis, "evalsha")
    rounds = 5
    for n in range(rounds):
        await slow_sweep_stub.Enqueue(svc.EnqueueRequest(queue="woken"))
        (leased,) = (await stream.wait_jobs(n + 1, timeout_s=5.0))[n:]
        await stream.ack(leased)
        await stream.wait_confirmations(n + 1)

    # Per job: the enqueue, one lease, the ack (whose refill finds the queue empty: the stream
    # was dry, so it makes no call).
    assert await _command_calls(redis, "evalsha") - before == 3 * rounds
    await stream.close()


async def test_a_waiting_stream_gets_the_first_job_enqueued_after_redis_forgot_its_scripts(
    slow_sweep_stub: Stub, redis: Redis
) -> None:
    # After a restart Redis knows no script: the enqueue is refused (NOSCRIPT), loaded and sent
    # again. The lease written on its first wake-up, its own script known already, ran between
    # the two and found nothing; the second sending must wake the stream again.
    stream = await LeaseStream(slow_sweep_stub).subscribe("forgotten", max_in_flight=4)
    await slow_sweep_stub.Enqueue(svc.EnqueueRequest(queue="forgotten"))
    (first,) = await stream.wait_jobs(1)
    await stream.ack(first)
    await stream.wait_confirmations(1)  # the stream waits dry for the next signal

    await redis.script_flush()
    await redis.script_load(headers()["lease"][1])
    await slow_sweep_stub.Enqueue(svc.EnqueueRequest(queue="forgotten"))

    await stream.wait_jobs(2, timeout_s=5.0)  # the safety pass is a minute away
    await stream.close()
