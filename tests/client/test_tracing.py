"""OpenTelemetry: a producer's `send` span, the server's span per call and a worker's `process`
span join up in one trace, through the job's metadata and the call's gRPC metadata."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode
from redis.asyncio import Redis

from jobqueue import AsyncClient, Client, InvalidArgument, JobContext
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests.client.conftest import WorkerRunner, eventually
from tests.tracing import Recorded, recording

ENQUEUE = "jobqueue.v1.JobQueueService/Enqueue"


@pytest.fixture
def recorded() -> Recorded:
    return recording()


@pytest.fixture
async def app(redis: Redis, settings: ServerSettings, recorded: Recorded) -> AsyncIterator[App]:
    """The in-process server, with its spans going to the test's provider."""
    running = await start_app(settings, Store(redis, store_config(settings)), recorded.provider)
    yield running
    await running.stop(grace_s=0)


def ids(span: ReadableSpan) -> tuple[int, int]:
    context = span.get_span_context()
    assert context is not None
    return context.trace_id, context.span_id


def traceparent_of(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


async def test_send_server_and_process_spans_join_up(
    target: str, queue: str, workers: WorkerRunner, recorded: Recorded
) -> None:
    inner: list[Any] = []

    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        # The handler's own spans nest under `process <queue>`.
        with trace.get_tracer("handler", tracer_provider=recorded.provider).start_as_current_span("render"):
            inner.append(trace.get_current_span().get_span_context())
        return {"done": True}

    worker = workers.new([queue], tracer_provider=recorded.provider)
    worker.add_handler(queue, handle)
    workers.start(worker)
    async with AsyncClient(target, batching=None, tracer_provider=recorded.provider) as producer:
        job_id = (await producer.enqueue(queue, {"to": "a@example.com"})).job_id
        job = await producer.wait(job_id)
    assert job.state == "completed"
    await eventually(lambda: len(recorded.named(f"process {queue}")) == 1)

    [send] = recorded.named(f"send {queue}")
    assert send.kind is SpanKind.PRODUCER
    assert send.attributes == {
        "messaging.system": "jobqueue",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": queue,
        "messaging.message.id": job_id,
    }
    # The job carries the send span's context to whichever worker takes it.
    assert job.metadata["traceparent"] == traceparent_of(send)

    [served] = [
        s for s in recorded.named(ENQUEUE) if s.parent is not None and s.parent.span_id == ids(send)[1]
    ]
    assert served.kind is SpanKind.SERVER
    assert ids(served)[0] == ids(send)[0]
    assert served.attributes is not None
    assert served.attributes["rpc.system"] == "grpc"
    assert served.attributes["rpc.method"] == "Enqueue"
    assert served.attributes["rpc.grpc.status_code"] == 0

    [process] = recorded.named(f"process {queue}")
    assert process.kind is SpanKind.CONSUMER
    assert process.parent is not None and process.parent.span_id == ids(send)[1]
    assert ids(process)[0] == ids(send)[0]
    assert [ids_of_link(link) for link in process.links] == [ids(send)]
    assert process.attributes is not None
    assert process.attributes["messaging.message.id"] == job_id
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["jobqueue.job.attempt"] == 1
    assert process.attributes["jobqueue.worker.id"] == worker.worker_id
    assert process.status.status_code is StatusCode.UNSET

    [render] = recorded.named("render")
    assert render.parent is not None and render.parent.span_id == ids(process)[1]
    assert inner[0].trace_id == ids(send)[0]


def ids_of_link(link: Any) -> tuple[int, int]:
    return link.context.trace_id, link.context.span_id


async def test_a_failing_handler_ends_its_span_with_an_error(
    target: str, queue: str, workers: WorkerRunner, recorded: Recorded
) -> None:
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        raise RuntimeError("smtp said no")

    worker = workers.new([queue], tracer_provider=recorded.provider)
    worker.add_handler(queue, handle)
    workers.start(worker)
    async with AsyncClient(target, tracer_provider=recorded.provider) as producer:
        await producer.enqueue(queue, {}, max_attempts=1)
    await eventually(lambda: len(recorded.named(f"process {queue}")) == 1)
    [process] = recorded.named(f"process {queue}")
    assert process.status.status_code is StatusCode.ERROR
    assert process.status.description == "RuntimeError: smtp said no"


async def test_batched_enqueues_each_carry_their_own_span(
    target: str, queue: str, recorded: Recorded
) -> None:
    async with AsyncClient(target, tracer_provider=recorded.provider) as producer:
        results = await asyncio.gather(*(producer.enqueue(queue, {"n": n}) for n in range(3)))
        jobs = [await producer.get(r.job_id) for r in results]
    sends = {span.attributes["messaging.message.id"]: span for span in recorded.named(f"send {queue}")}  # type: ignore[index]
    assert len(sends) == 3
    for job in jobs:
        assert job.metadata["traceparent"] == traceparent_of(sends[job.id])


async def test_enqueue_many_is_one_send_span_whose_context_every_job_carries(
    target: str, queue: str, recorded: Recorded
) -> None:
    async with AsyncClient(target, tracer_provider=recorded.provider) as producer:
        results = await producer.enqueue_many([{"queue": queue, "payload": {"n": n}} for n in range(4)])
        jobs = [await producer.get(r.job_id) for r in results]
    [send] = recorded.named(f"send {queue}")
    assert send.attributes is not None and send.attributes["messaging.batch.message_count"] == 4
    assert {job.metadata["traceparent"] for job in jobs} == {traceparent_of(send)}
    [batch] = recorded.named("jobqueue.v1.JobQueueService/EnqueueBatch")
    assert batch.parent is not None and batch.parent.span_id == ids(send)[1]


async def test_a_traceparent_the_caller_set_is_kept(target: str, queue: str, recorded: Recorded) -> None:
    theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with AsyncClient(target, tracer_provider=recorded.provider) as producer:
        job_id = (await producer.enqueue(queue, {}, metadata={"traceparent": theirs})).job_id
        assert (await producer.get(job_id)).metadata["traceparent"] == theirs


async def test_without_a_tracer_provider_nothing_is_added(target: str, queue: str) -> None:
    async with AsyncClient(target, batching=None) as producer:
        job_id = (await producer.enqueue(queue, {}, metadata={"k": "v"})).job_id
        assert (await producer.get(job_id)).metadata == {"k": "v"}


async def test_a_failed_call_is_an_error_span_with_its_status(target: str, recorded: Recorded) -> None:
    async with AsyncClient(target) as producer:
        with pytest.raises(InvalidArgument):
            await producer.get("not-a-job-id")
    [served] = recorded.named("jobqueue.v1.JobQueueService/GetStatus")
    assert served.status.status_code is StatusCode.ERROR
    assert served.attributes is not None and served.attributes["rpc.grpc.status_code"] == 3


async def test_the_blocking_client_traces_too(target: str, queue: str, recorded: Recorded) -> None:
    def produce() -> str:
        with Client(target, tracer_provider=recorded.provider) as producer:
            job_id = producer.enqueue(queue, {}).job_id
            return producer.get(job_id).metadata["traceparent"]

    carried = await asyncio.to_thread(produce)
    [send] = recorded.named(f"send {queue}")
    assert carried == traceparent_of(send)
