"""Bad input: INVALID_ARGUMENT naming the field, and nothing written to Redis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.test_unary_calls import bad_request_field

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

E = svc.EnqueueRequest


def big_payload() -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update({"blob": "x" * (1024 * 1024)})
    return value


INVALID_ENQUEUES = [
    (E(), "queue"),
    (E(queue="has space"), "queue"),
    (E(queue="{braces}"), "queue"),
    (E(queue="x" * 129), "queue"),
    (E(queue="q", payload=big_payload()), "payload"),
    (E(queue="q", payload_bytes=b"x" * (1024 * 1024 + 1)), "payload"),
    (E(queue="q", priority=9), "priority"),  # type: ignore[arg-type]
    (E(queue="q", max_attempts=-1), "max_attempts"),
    (E(queue="q", max_attempts=1001), "max_attempts"),
    (E(queue="q", delay=duration_pb2.Duration(seconds=-5)), "delay"),
    (E(queue="q", delay=duration_pb2.Duration(seconds=10**9)), "delay"),
    (
        E(
            queue="q",
            delay=duration_pb2.Duration(seconds=1),
            schedule_time=timestamp_pb2.Timestamp(seconds=1),
        ),
        "delay",
    ),
    (E(queue="q", schedule_time=timestamp_pb2.Timestamp(seconds=-1)), "schedule_time"),
    (E(queue="q", lease_duration=duration_pb2.Duration()), "lease_duration"),
    (E(queue="q", lease_duration=duration_pb2.Duration(seconds=10**7)), "lease_duration"),
    (E(queue="q", idempotency_key="k" * 257), "idempotency_key"),
    (E(queue="q", backoff=job_pb2.BackoffPolicy(multiplier=0.5)), "backoff.multiplier"),
    (E(queue="q", backoff=job_pb2.BackoffPolicy(jitter=1.5)), "backoff.jitter"),
    (
        E(queue="q", backoff=job_pb2.BackoffPolicy(initial_delay=duration_pb2.Duration(seconds=-1))),
        "backoff.initial_delay",
    ),
    (E(queue="q", metadata={f"k{i}": "v" for i in range(65)}), "metadata"),
]


async def keyspace(redis: Redis, key_prefix: str) -> list[bytes]:
    return sorted([key async for key in redis.scan_iter(match=f"{key_prefix}:*")])


@pytest.mark.parametrize(("request_", "field"), INVALID_ENQUEUES)
async def test_an_invalid_enqueue_names_the_field_and_writes_nothing(
    stub: Stub, redis: Redis, key_prefix: str, request_: svc.EnqueueRequest, field: str
) -> None:
    await stub.Enqueue(E(queue="existing"))
    before = await keyspace(redis, key_prefix)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Enqueue(request_)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(raised.value) == field
    assert field in (raised.value.details() or "")
    assert await keyspace(redis, key_prefix) == before


async def test_one_bad_request_in_a_batch_rejects_the_whole_batch(
    stub: Stub, redis: Redis, key_prefix: str
) -> None:
    requests = [E(queue="q"), E(queue="q"), E(queue="bad queue")]

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests))

    assert bad_request_field(raised.value) == "requests[2].queue"
    assert await keyspace(redis, key_prefix) == []


def _payload(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"n": float("nan")}, "n is NaN"),
        ({"a": {"b": [1.0, float("inf")]}}, "a.b[1] is NaN"),
        ({"x": "ok", "y": -float("inf")}, "y is NaN"),
    ],
)
async def test_nan_and_infinities_in_a_payload_are_refused_naming_where(
    stub: Stub, redis: Redis, key_prefix: str, value: dict[str, object], where: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as single:
        await stub.Enqueue(E(queue="q", payload=_payload(value)))
    with pytest.raises(grpc.aio.AioRpcError) as batch:
        await stub.EnqueueBatch(
            svc.EnqueueBatchRequest(requests=[E(queue="q"), E(queue="q", payload=_payload(value))])
        )

    assert single.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(single.value) == "payload"
    assert (single.value.details() or "").startswith(f"payload: {where} or infinite")
    assert bad_request_field(batch.value) == "requests[1].payload"
    assert await keyspace(redis, key_prefix) == []


async def test_the_largest_and_smallest_finite_numbers_are_accepted(stub: Stub) -> None:
    # Their exponent bits are all set but the lowest: one short of an infinity's.
    extremes = {"max": 1.7976931348623157e308, "min": -1.7976931348623157e308, "tiny": 5e-324}
    job_id = (await stub.Enqueue(E(queue="q", payload=_payload(dict(extremes))))).job_id

    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert dict(job.payload) == extremes


@pytest.mark.parametrize("size", [0, 1001])
async def test_a_batch_must_hold_between_one_and_the_limit(stub: Stub, size: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=[E(queue="q")] * size))
    assert bad_request_field(raised.value) == "requests"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.GetStatus(svc.GetStatusRequest(job_id="")),
        lambda s: s.GetStatus(svc.GetStatusRequest(job_id="no-ulid-here")),
        lambda s: s.Cancel(svc.CancelRequest(job_id="q:lowercase0000000000000000")),
        lambda s: s.Retry(svc.RetryRequest(job_id="bad queue:01ARZ3NDEKTSV4RRFFQ69G5FAV")),
        lambda s: s.Ack(svc.AckRequest(job_id="x")),
    ],
)
async def test_a_malformed_job_id_is_invalid_argument(stub: Stub, call: object) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(stub)  # type: ignore[operator]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(raised.value) == "job_id"


async def test_an_ack_without_a_token_names_the_field(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Ack(svc.AckRequest(job_id="q:01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    assert bad_request_field(raised.value) == "lease_token"


async def test_a_stats_request_for_an_invalid_queue_names_the_field(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Stats(svc.StatsRequest(queue="no spaces"))
    assert bad_request_field(raised.value) == "queue"
