"""Producer batching (docs/clients.md, "Producer batching") in AsyncClient, on the in-process server.

An interceptor records every Enqueue and EnqueueBatch call. Tests that need a known batch
make one call first (sent alone: nothing is in flight) and start the others while it is in
flight; the server runs on this event loop, so it cannot answer before they have joined the
next batch, and a long linger keeps that batch open until then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue import (
    AsyncClient,
    Batching,
    DeadlineExceeded,
    DurabilityUnavailable,
    EnqueueResult,
    InvalidArgument,
)
from jobqueue.batching import STREAM_BATCH_JOBS, Call, Gatherer, caller_error, refused_job
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import connect_redis, start_app, store_config
from jobqueue_server.runtime.valkey import EmbeddedValkey
from jobqueue_server.store import Store
from tests.client.batch_calls import ENQUEUE, ENQUEUE_BATCH, ENQUEUE_STREAM, CallLog, async_recorders
from tests.client.conftest import stop_app
from tests.server.test_durability import embedded, suite_binary
from tests.support import TestRedis

#: Long enough that a batch goes out only when the one in flight is answered (or on flush).
HELD = Batching(linger=60)


@asynccontextmanager
async def recorded(
    target: str, log: CallLog, batching: Batching | None = HELD, **options: Any
) -> AsyncIterator[AsyncClient]:
    channel = grpc.aio.insecure_channel(target, interceptors=async_recorders(log))
    try:
        async with AsyncClient(channel, batching=batching, **options) as client:
            yield client
    finally:
        await channel.close()


async def one_in_flight_then(client: AsyncClient, queue: str, *calls: dict[str, Any]) -> list[Any]:
    """Enqueues one job, then `calls` (keyword arguments of enqueue) while it is in flight;
    returns each call's result or error, the first one's first."""
    first = asyncio.create_task(client.enqueue(queue, {"first": True}))
    await asyncio.sleep(0)  # it goes out alone
    rest = [asyncio.create_task(client.enqueue(**{"queue": queue, **call})) for call in calls]
    return await asyncio.gather(first, *rest, return_exceptions=True)


async def test_concurrent_enqueues_get_their_own_ids_in_far_fewer_calls(target: str, queue: str) -> None:
    log = CallLog()
    async with recorded(target, log, batching=Batching()) as client:

        async def caller(lane: int) -> list[tuple[int, EnqueueResult]]:
            return [(n, await client.enqueue(queue, {"lane": lane, "n": n})) for n in range(10)]

        lanes = await asyncio.gather(*(caller(lane) for lane in range(64)))
        jobs = {(lane, n): result.job_id for lane, results in enumerate(lanes) for n, result in results}
        stored = await asyncio.gather(*(client.get(job_id) for job_id in jobs.values()))

    assert len(set(jobs.values())) == 640
    assert [job.payload for job in stored] == [{"lane": lane, "n": n} for lane, n in jobs]
    assert log.jobs == 640 and len(log.calls) <= 640 / 8
    # A stream message is full at 32 jobs: it goes at once, and the server starts on it.
    assert max(len(sent.requests) for sent in log.batches()) == STREAM_BATCH_JOBS
    assert {sent.method for sent in log.calls} == {ENQUEUE_STREAM}


async def test_a_lone_call_is_sent_at_once_on_the_stream(target: str, queue: str) -> None:
    log = CallLog()
    async with recorded(target, log) as client:  # a linger of a minute: a wait would time out
        result = await client.enqueue(queue, {"n": 1})

    assert [(sent.method, len(sent.requests)) for sent in log.calls] == [(ENQUEUE_STREAM, 1)]
    assert result.job_id.startswith(f"{queue}:")


async def test_a_job_refused_alone_fails_only_its_caller_and_the_others_are_sent_again(
    target: str, queue: str
) -> None:
    log = CallLog()
    calls: list[dict[str, Any]] = [{"payload": {"n": n}} for n in range(5)]
    calls.insert(2, {"queue": "not a queue!", "payload": {"n": "bad"}})
    async with recorded(target, log) as client:
        first, *outcomes = await one_in_flight_then(client, queue, *calls)
        (stats,) = await client.stats(queue)

    refused = outcomes.pop(2)
    assert isinstance(refused, InvalidArgument)
    assert (refused.field, refused.reason) == ("queue", "INVALID_ARGUMENT")
    assert refused.message.startswith("queue: ")
    assert all(isinstance(outcome, EnqueueResult) for outcome in [first, *outcomes])
    assert stats.queued == 6
    # The first alone, then the others with the bad job, then without it.
    assert [len(sent.requests) for sent in log.batches()] == [1, 6, 5]


async def test_jobs_of_different_durability_levels_never_share_a_batch(target: str, queue: str) -> None:
    log = CallLog()
    levels: list[str | None] = ["applied", "fsynced", None] * 4
    async with recorded(target, log) as client:
        outcomes = await one_in_flight_then(client, queue, *({"durability": level} for level in levels))

    assert all(isinstance(outcome, EnqueueResult) for outcome in outcomes)
    batches = log.batches()
    assert sorted(len(sent.requests) for sent in batches) == [1, 4, 4, 4]
    assert all(len({request.durability for request in sent.requests}) == 1 for sent in batches)


async def test_callers_whose_deadline_passes_unanswered_get_deadline_exceeded_and_the_stream_goes_on(
    target: str, queue: str, redis: Redis
) -> None:
    async with AsyncClient(target) as client:
        await client.enqueue(queue, {"n": 0})  # the stream is open
        await redis.client_pause(700, all=False)  # the server's next write waits (its timeout: 1 s)
        with pytest.raises(DeadlineExceeded):
            await client.enqueue(queue, {"n": 1}, timeout=0.2)
        after = await client.enqueue(queue, {"n": 2})  # once Redis writes again, on the same stream
        (stats,) = await client.stats(queue)

    assert after.job_id.startswith(f"{queue}:")
    assert stats.queued == 3  # the late job was written: "may be enqueued" is what the error says


@pytest.fixture
async def without_stream(target: str) -> AsyncIterator[str]:
    """A server with Enqueue and EnqueueBatch but no EnqueueStream, as an older one: a gRPC
    proxy to the suite's server for those two methods."""
    async with grpc.aio.insecure_channel(target) as upstream:
        stub = svc_grpc.JobQueueServiceStub(upstream)

        async def enqueue(request: svc.EnqueueRequest, context: Any) -> svc.EnqueueResponse:
            return await stub.Enqueue(request, timeout=context.time_remaining())

        async def enqueue_batch(request: svc.EnqueueBatchRequest, context: Any) -> svc.EnqueueBatchResponse:
            return await stub.EnqueueBatch(request, timeout=context.time_remaining())

        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Enqueue": grpc.unary_unary_rpc_method_handler(
                enqueue, svc.EnqueueRequest.FromString, svc.EnqueueResponse.SerializeToString
            ),
            "EnqueueBatch": grpc.unary_unary_rpc_method_handler(
                enqueue_batch, svc.EnqueueBatchRequest.FromString, svc.EnqueueBatchResponse.SerializeToString
            ),
        }
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("jobqueue.v1.JobQueueService", handlers),)
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            await server.stop(0)


async def test_without_enqueue_stream_batches_go_as_calls_with_the_earliest_deadline(
    without_stream: str, queue: str
) -> None:
    log = CallLog()
    async with recorded(without_stream, log) as client:
        outcomes = await one_in_flight_then(client, queue, {"timeout": 30}, {"timeout": 7}, {"timeout": 20})
        later = await client.enqueue(queue, {"n": "later"})

    assert all(isinstance(outcome, EnqueueResult) for outcome in [*outcomes, later])
    calls = [sent for sent in log.calls if sent.method != ENQUEUE_STREAM]
    assert [(sent.method, len(sent.requests)) for sent in calls] == [
        (ENQUEUE, 1),
        (ENQUEUE_BATCH, 3),
        (ENQUEUE, 1),
    ]
    assert calls[1].timeout is not None and calls[1].timeout <= 7
    assert sum(sent.method == ENQUEUE_STREAM for sent in log.calls) <= 1  # tried once, then remembered


async def test_a_batch_holds_at_most_max_jobs(target: str, queue: str) -> None:
    log = CallLog()
    async with recorded(target, log, batching=Batching(max_jobs=3, linger=60)) as client:
        outcomes = await one_in_flight_then(client, queue, *({"payload": {"n": n}} for n in range(7)))

    assert len({outcome.job_id for outcome in outcomes}) == 8
    assert all(len(sent.requests) <= 3 for sent in log.calls) and log.jobs == 8


async def test_a_job_cancelled_before_it_was_sent_is_not_enqueued(target: str, queue: str) -> None:
    log = CallLog()
    async with recorded(target, log) as client:
        first = asyncio.create_task(client.enqueue(queue, {"n": 1}))
        await asyncio.sleep(0)
        kept = asyncio.create_task(client.enqueue(queue, {"n": 2}))
        dropped = asyncio.create_task(client.enqueue(queue, {"n": 3}))
        await asyncio.sleep(0)  # both wait in the next batch
        dropped.cancel()
        await asyncio.gather(first, kept, dropped, return_exceptions=True)
        (stats,) = await client.stats(queue)

    assert dropped.cancelled() and kept.result().job_id
    assert stats.queued == 2
    assert [request.payload["n"] for sent in log.calls for request in sent.requests] == [1, 2]


async def test_flush_sends_what_is_pending_and_waits_for_the_answers(target: str, queue: str) -> None:
    log = CallLog()
    async with recorded(target, log) as client:
        calls = [asyncio.create_task(client.enqueue(queue, {"n": n})) for n in range(5)]
        await asyncio.sleep(0)  # one in flight, four waiting for it

        await client.flush()

        (stats,) = await client.stats(queue)
        assert stats.queued == 5
        assert len({(await call).job_id for call in calls}) == 5


async def test_close_sends_what_is_pending_first(target: str, queue: str) -> None:
    client = AsyncClient(target, batching=HELD)
    calls = [asyncio.create_task(client.enqueue(queue, {"n": n})) for n in range(5)]
    await asyncio.sleep(0)

    await client.close()

    results = await asyncio.gather(*calls)
    async with AsyncClient(target) as reader:
        (stats,) = await reader.stats(queue)
    assert stats.queued == 5 and len({result.job_id for result in results}) == 5


async def test_without_batching_each_job_is_its_own_enqueue(target: str, queue: str) -> None:
    log = CallLog()
    async with recorded(target, log, batching=None) as client:
        await asyncio.gather(*(client.enqueue(queue, {"n": n}) for n in range(10)))

    assert [sent.method for sent in log.calls] == [ENQUEUE] * 10


# -- a batch refused as a whole ------------------------------------------------------------------


@pytest.fixture(scope="module")
def aof_off(tmp_path_factory: pytest.TempPathFactory, test_redis: TestRedis) -> Iterator[EmbeddedValkey]:
    """A Valkey with its append-only file off: it cannot confirm fsynced writes."""
    with embedded(tmp_path_factory.mktemp("aof-off"), suite_binary(test_redis), appendonly="no") as server:
        yield server


@pytest.fixture
async def aof_off_target(settings: ServerSettings, aof_off: EmbeddedValkey) -> AsyncIterator[str]:
    on_aof_off = settings.model_copy(update={"redis_url": aof_off.url})
    redis: Redis = connect_redis(aof_off.url, timeout_s=2.0)
    app = await start_app(on_aof_off, Store(redis, store_config(on_aof_off)))
    try:
        yield f"127.0.0.1:{app.port}"
    finally:
        await stop_app(app)
        await redis.aclose()


async def test_a_batch_refused_as_a_whole_fails_every_caller_and_writes_nothing(
    aof_off_target: str, queue: str
) -> None:
    log = CallLog()
    async with recorded(aof_off_target, log) as client:
        outcomes = await one_in_flight_then(client, queue, *({"durability": "fsynced"} for _ in range(4)))
        stats = await client.stats(queue)

    # The first (not fsynced) went alone; the four fsynced ones were one batch.
    assert isinstance(outcomes[0], EnqueueResult)
    assert all(isinstance(outcome, DurabilityUnavailable) for outcome in outcomes[1:])
    assert len({id(outcome) for outcome in outcomes[1:]}) == 4  # each caller raises its own
    assert [len(sent.requests) for sent in log.batches()] == [1, 4]
    assert stats[0].queued == 1


# -- the rules alone ------------------------------------------------------------------------------


def test_only_a_field_naming_one_job_of_the_batch_refuses_that_job_alone() -> None:
    def refused(field: str | None) -> int | None:
        return refused_job(InvalidArgument("bad", field=field), jobs=4)

    assert [refused("requests[3].queue"), refused("requests[0]"), refused("requests[2].payload")] == [3, 0, 2]
    assert refused("requests[4].queue") is None  # no such job: the whole batch is refused
    assert refused("requests[x].queue") is None
    assert refused("requests") is None
    assert refused(None) is None
    assert refused_job(DurabilityUnavailable("no aof"), jobs=4) is None


def test_a_refused_job_is_named_as_a_single_enqueue_names_it() -> None:
    error = InvalidArgument("requests[12].payload.x: too deep", field="requests[12].payload.x")

    renamed = caller_error(error, 12)

    assert (renamed.field, renamed.message) == ("payload.x", "payload.x: too deep")
    assert (renamed.reason, renamed.code) == (error.reason, error.code)


def test_settings_out_of_range_are_refused_naming_the_setting() -> None:
    refused = []
    for settings in ({"max_jobs": 0}, {"max_jobs": 10_001}, {"max_bytes": 0}, {"linger": -0.001}):
        with pytest.raises(InvalidArgument) as caught:
            Batching(**settings)
        refused.append(caught.value.field)

    assert refused == ["batching.max_jobs", "batching.max_jobs", "batching.max_bytes", "batching.linger"]
    assert Batching(linger=timedelta(milliseconds=2)).linger_s == 0.002


def _call(queue: str) -> Call[concurrent.futures.Future[EnqueueResult]]:
    request = svc.EnqueueRequest(queue=queue)
    return Call(request, request.ByteSize(), math.inf, concurrent.futures.Future())


def test_beside_a_batch_in_flight_only_one_that_has_lingered_takes_the_second_slot() -> None:
    gatherer: Gatherer[concurrent.futures.Future[EnqueueResult]] = Gatherer(Batching())
    (first,), _ = gatherer.add(_call("a"))  # nothing in flight: sent at once
    to_send, second = gatherer.add(_call("b"))
    assert to_send == [] and second is not None
    assert gatherer.lingered(second) == [second]  # lingered beside one in flight: goes

    to_send, third = gatherer.add(_call("c"))
    assert to_send == [] and third is not None
    # The first is answered while the second is still out: the third, not lingered, waits for
    # the answer instead of going out as a second, smaller call.
    assert gatherer.answered(first) == []
    assert gatherer.answered(second) == [third]
