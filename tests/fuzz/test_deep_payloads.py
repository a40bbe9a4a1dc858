"""JSON payloads nested deep: what the server accepts it must be able to deliver.

Protobuf runtimes (Python's upb, Java's CodedInputStream) refuse to parse a message nested
more than 100 levels, and each JSON object level is three (Struct, map entry, Value). A job
travels deeper inside a LeaseResponse (LeaseResponse > LeasedJob > Job > payload) than
inside the EnqueueRequest that brought it (two levels more), so a payload can fit the one
and not the other. GetStatus (one level more) still decodes at the Enqueue limit.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.fuzz.checks import CALL_TIMEOUT_S, check_refusal, status_of
from tests.fuzz.strategies import MAX_WIRE_NESTING, nested_payload

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def _first_delivery(stub: Stub, queue: str) -> Any:
    """What a worker reads after its subscription is accepted (None: it could not decode it)."""
    call: Any = stub.Lease()
    try:
        await call.write(svc.LeaseRequest(subscribe=svc.Subscribe(queues=[queue])))
        async with asyncio.timeout(CALL_TIMEOUT_S):
            assert await call.read() == svc.LeaseResponse()
            return await call.read()
    finally:
        call.cancel()


async def _enqueue_or_refuse(stub: Stub, request: svc.EnqueueRequest) -> bool:
    """True when accepted; a refusal must be INVALID_ARGUMENT naming the payload."""
    try:
        await stub.Enqueue(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        assert check_refusal(status_of(error), request).field == "payload"
        return False
    return True


@pytest.mark.parametrize("depth", [1, 16, MAX_WIRE_NESTING - 1])
async def test_a_nested_payload_the_server_accepts_reaches_a_worker_intact(stub: Stub, depth: int) -> None:
    queue = f"deep-{uuid.uuid4().hex[:8]}"
    request = svc.EnqueueRequest(queue=queue, payload=nested_payload(depth))
    assert await _enqueue_or_refuse(stub, request)
    delivered = await _first_delivery(stub, queue)
    assert delivered.jobs[0].job.payload == request.payload


async def test_a_payload_nested_too_deep_to_deliver_is_refused_at_enqueue(stub: Stub) -> None:
    queue = f"deep-{uuid.uuid4().hex[:8]}"
    request = svc.EnqueueRequest(queue=queue, payload=nested_payload(MAX_WIRE_NESTING))
    if await _enqueue_or_refuse(stub, request):
        delivered = await _first_delivery(stub, queue)
        assert isinstance(delivered, svc.LeaseResponse), "the worker could not decode its job"
