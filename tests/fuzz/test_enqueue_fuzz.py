"""Enqueue, EnqueueBatch and EnqueueStream under random, huge and malformed requests.

Every call is accepted, or refused with INVALID_ARGUMENT naming a real field of the request;
a refused call writes nothing. An accepted job reads back exactly as it was given. After a
call that was accepted the test's keys are cleared, so every example starts from nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from google.protobuf import struct_pb2
from google.rpc import code_pb2
from hypothesis import example, given
from hypothesis import strategies as st

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.fuzz import strategies as fs
from tests.fuzz.checks import CALL_TIMEOUT_S, Refused, call_checked, check_refusal
from tests.fuzz.keyspace import Keyspace
from tests.fuzz.mutations import one_field_broken
from tests.fuzz.profiles import fuzz_settings

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

E = svc.EnqueueRequest
DEFAULT_MAX_ATTEMPTS = 3


def _same_struct(a: struct_pb2.Struct, b: struct_pb2.Struct) -> bool:
    # Bytes, not ==: as floats -0.0 == 0.0; the bytes show each number came back exactly.
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


async def _reads_back(stub: Stub, request: svc.EnqueueRequest, job_id: str) -> None:
    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id), timeout=CALL_TIMEOUT_S)).job
    assert (job.id, job.queue) == (job_id, request.queue)
    assert job.payload_bytes == request.payload_bytes
    assert _same_struct(job.payload, request.payload), "the payload changed on its way"
    assert dict(job.metadata) == dict(request.metadata)
    assert job.idempotency_key == request.idempotency_key
    assert job.priority == (request.priority or job_pb2.PRIORITY_NORMAL)
    assert job.max_attempts == (request.max_attempts or DEFAULT_MAX_ATTEMPTS)


@fuzz_settings(3.5)
@given(request=fs.enqueue_requests())
@example(request=E(queue="{orders}"))
@example(request=E(queue="orders}{x"))
@example(request=E(queue="队列\x00\n"))
@example(request=E(queue="q", payload_bytes=b"\x00" * (fs.MAX_PAYLOAD_BYTES + 1)))
@example(request=E(queue="q", payload_bytes=b"\x00" * fs.MAX_PAYLOAD_BYTES))
@example(request=E(queue="q", max_attempts=fs.INT32_MIN, priority=fs.INT32_MAX))  # type: ignore[arg-type]
@example(request=E(queue="q", metadata={"\x00": "\u202e🚀", "k": "\r\n"}, idempotency_key="\x7f"))
async def test_any_enqueue_is_accepted_as_given_or_refused_naming_a_field_without_writing(
    stub: Stub, keyspace: Keyspace, request: svc.EnqueueRequest
) -> None:
    outcome = await call_checked(keyspace, stub.Enqueue, request)
    if isinstance(outcome, Refused):
        assert outcome.code == code_pb2.INVALID_ARGUMENT
        return
    try:
        assert not outcome.duplicate
        await _reads_back(stub, request, outcome.job_id)
    finally:
        await keyspace.clear()


@fuzz_settings(3)
@given(broken=one_field_broken())
async def test_an_enqueue_with_one_broken_field_is_refused_naming_exactly_that_field(
    stub: Stub, keyspace: Keyspace, broken: tuple[str, svc.EnqueueRequest]
) -> None:
    field, request = broken
    outcome = await call_checked(keyspace, stub.Enqueue, request)
    assert isinstance(outcome, Refused), f"accepted with {field} broken"
    assert outcome.field == field


@fuzz_settings(1)
@given(
    requests=st.one_of(
        st.lists(fs.enqueue_requests(), max_size=3),
        st.integers(fs.MAX_BATCH + 1, fs.MAX_BATCH + 20).map(lambda n: [E(queue="q")] * n),
    )
)
@example(requests=[])
@example(requests=[E(queue="q")] * (fs.MAX_BATCH + 1))
async def test_any_enqueue_batch_is_accepted_whole_or_refused_whole_naming_a_field(
    stub: Stub, keyspace: Keyspace, requests: list[svc.EnqueueRequest]
) -> None:
    outcome = await call_checked(keyspace, stub.EnqueueBatch, svc.EnqueueBatchRequest(requests=requests))
    if isinstance(outcome, Refused):
        assert outcome.code == code_pb2.INVALID_ARGUMENT
        return
    try:
        assert len(outcome.responses) == len(requests)
    finally:
        await keyspace.clear()


@fuzz_settings(1)
@given(
    valid=st.lists(fs.valid_enqueue_requests(), min_size=1, max_size=6),
    broken=one_field_broken(),
    data=st.data(),
)
async def test_a_batch_with_one_broken_request_names_it_by_index_and_writes_nothing(
    stub: Stub,
    keyspace: Keyspace,
    valid: list[svc.EnqueueRequest],
    broken: tuple[str, svc.EnqueueRequest],
    data: st.DataObject,
) -> None:
    field, bad = broken
    index = data.draw(st.integers(0, len(valid)), label="index")
    requests = [*valid[:index], bad, *valid[index:]]
    outcome = await call_checked(keyspace, stub.EnqueueBatch, svc.EnqueueBatchRequest(requests=requests))
    assert isinstance(outcome, Refused), f"accepted with requests[{index}].{field} broken"
    assert outcome.field == f"requests[{index}].{field}"


@fuzz_settings(1)
@given(batches=st.lists(st.lists(fs.enqueue_requests(), max_size=3), min_size=1, max_size=4))
async def test_batches_on_one_enqueue_stream_are_each_answered_in_order_whole_or_refused_naming_a_field(
    stub: Stub, keyspace: Keyspace, batches: list[list[svc.EnqueueRequest]]
) -> None:
    call = stub.EnqueueStream(timeout=CALL_TIMEOUT_S)
    try:
        for sequence, requests in enumerate(batches, start=1):
            before = await keyspace.snapshot()
            await call.write(svc.EnqueueStreamRequest(sequence=sequence, requests=requests))
            answer = await call.read()
            assert isinstance(answer, svc.EnqueueStreamResponse)
            assert answer.sequence == sequence
            if answer.HasField("error"):
                request = svc.EnqueueBatchRequest(requests=requests)  # the same fields, by the same names
                assert check_refusal(answer.error, request).code == code_pb2.INVALID_ARGUMENT
                assert not answer.responses
                assert await keyspace.snapshot() == before, "a refused request wrote"
            else:
                assert len(answer.responses) == len(requests)
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
    finally:
        call.cancel()
        await keyspace.clear()


async def test_the_server_still_enqueues_after_the_fuzzing(stub: Stub) -> None:
    job_id = (await stub.Enqueue(E(queue="after-fuzz"), timeout=CALL_TIMEOUT_S)).job_id
    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id), timeout=CALL_TIMEOUT_S)).job
    assert job.state == job_pb2.JOB_STATE_QUEUED
