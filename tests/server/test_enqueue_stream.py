"""EnqueueStream: batches sent without waiting, each answered in order; a refused one writes
nothing and leaves the stream open; a stopping server answers what it read, then ends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.enqueue_stream import MAX_UNANSWERED, EnqueueStreamSession
from jobqueue_server.api.group_commit import GroupCommit
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, limits
from jobqueue_server.store import Store
from tests.server.streams import payload
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


def _batch(sequence: int, *queues: str) -> svc.EnqueueStreamRequest:
    return svc.EnqueueStreamRequest(
        sequence=sequence,
        requests=[
            svc.EnqueueRequest(queue=q, payload=payload(seq=sequence, n=n)) for n, q in enumerate(queues)
        ],
    )


def _field_and_reason(status: status_pb2.Status) -> tuple[str, str]:
    field = reason = ""
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad):
            field = bad.field_violations[0].field
    return field, reason


async def _in_order(requests: list[svc.EnqueueStreamRequest]) -> AsyncIterator[svc.EnqueueStreamRequest]:
    for request in requests:
        yield request


async def _raw(messages: list[bytes]) -> AsyncIterator[bytes]:
    for message in messages:
        yield message


async def test_requests_sent_without_waiting_are_answered_in_order_and_their_jobs_queued(stub: Stub) -> None:
    requests = [_batch(seq, *(["q"] * seq)) for seq in range(1, 21)]

    answers = [answer async for answer in stub.EnqueueStream(_in_order(requests))]

    assert [a.sequence for a in answers] == list(range(1, 21))
    assert [len(a.responses) for a in answers] == list(range(1, 21))
    assert not any(a.HasField("error") for a in answers)
    ids = [r.job_id for a in answers for r in a.responses]
    assert len(set(ids)) == sum(range(1, 21))
    last = answers[-1]
    jobs = [await stub.GetStatus(svc.GetStatusRequest(job_id=r.job_id)) for r in last.responses]
    assert [(j.job.payload["seq"], j.job.payload["n"]) for j in jobs] == [(20, n) for n in range(20)]
    assert {j.job.state for j in jobs} == {job_pb2.JOB_STATE_QUEUED}


async def test_a_refused_request_writes_nothing_and_the_stream_goes_on(stub: Stub) -> None:
    requests = [_batch(1, "q"), _batch(2, "q", "bad queue", "q"), _batch(3, "q")]

    answers = [answer async for answer in stub.EnqueueStream(_in_order(requests))]
    stats = await stub.Stats(svc.StatsRequest(queue="q"))

    assert [a.sequence for a in answers] == [1, 2, 3]
    refused = answers[1]
    assert refused.error.code == code_pb2.INVALID_ARGUMENT and not refused.responses
    assert _field_and_reason(refused.error) == ("requests[1].queue", "INVALID_ARGUMENT")
    assert len(answers[0].responses) == len(answers[2].responses) == 1
    assert stats.queues[0].queued == 2  # nothing of request 2


async def test_an_empty_request_is_refused_by_field(stub: Stub) -> None:
    answers = [a async for a in stub.EnqueueStream(_in_order([svc.EnqueueStreamRequest(sequence=7)]))]

    assert answers[0].sequence == 7
    assert _field_and_reason(answers[0].error) == ("requests", "INVALID_ARGUMENT")


async def test_a_message_that_is_not_a_request_ends_the_stream_after_the_answers_before_it(
    app: App,
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        call = channel.stream_stream(
            "/jobqueue.v1.JobQueueService/EnqueueStream",
            request_serializer=lambda raw: raw,
            response_deserializer=svc.EnqueueStreamResponse.FromString,
        )(_raw([_batch(1, "q").SerializeToString(), b"\xff\xff\xff"]))
        answers = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async for answer in call:
                answers.append(answer)

    assert [a.sequence for a in answers] == [1]
    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_stream_reads_at_most_its_read_ahead_of_its_answers(
    store: Store, settings: ServerSettings
) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[svc.EnqueueStreamRequest]:
        nonlocal pulled
        while True:
            pulled += 1
            yield _batch(pulled, "ahead")

    answered = asyncio.Event()

    async def stuck_write(answer: bytes) -> None:  # a producer that never reads its answers
        answered.set()
        await asyncio.Event().wait()

    session = EnqueueStreamSession(
        GroupCommit(store.enqueue),
        limits(settings),
        store.clock.now_ms,
        lambda: False,
        store.dependencies.missing,
        store.partitions,
    )
    serving = asyncio.create_task(session.serve(endless(), stuck_write))
    await answered.wait()
    for _ in range(100):  # turns of the loop for the reader to run ahead as far as it may
        await asyncio.sleep(0)
    serving.cancel()
    await asyncio.wait([serving])

    assert pulled == MAX_UNANSWERED  # room is freed only by an answer written


async def test_a_stopping_server_answers_what_it_read_then_ends_the_stream(app: App, stub: Stub) -> None:
    call = stub.EnqueueStream()
    await call.write(_batch(1, "q", "q"))
    first = await call.read()
    assert isinstance(first, svc.EnqueueStreamResponse)

    stopping = asyncio.create_task(app.stop(grace_s=5))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await call.read()
    await asyncio.wait_for(stopping, timeout=10)

    assert first.sequence == 1 and len(first.responses) == 2
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(ended.value) == "SERVER_SHUTTING_DOWN"
