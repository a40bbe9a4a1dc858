"""Enqueue, EnqueueBatch, GetStatus, Stats and the token-holding unary calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import LeaseStream, payload

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


def bad_request_field(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            return str(bad.field_violations[0].field)
    raise AssertionError("no BadRequest detail")


def error_reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    raise AssertionError("no ErrorInfo detail")


async def test_enqueue_returns_an_id_that_finds_the_job_with_everything_given(stub: Stub) -> None:
    request = svc.EnqueueRequest(
        queue="reports",
        payload=payload(kind="monthly", n=3),
        payload_bytes=b"\x00\x01",
        priority=job_pb2.PRIORITY_HIGH,
        max_attempts=5,
        metadata={"traceparent": "00-abc"},
        lease_duration=duration_pb2.Duration(seconds=90),
    )
    job_id = (await stub.Enqueue(request)).job_id

    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job

    assert job_id.startswith("reports:") and job.queue == "reports"
    assert (job.state, job.priority, job.max_attempts, job.attempts) == (
        job_pb2.JOB_STATE_QUEUED,
        job_pb2.PRIORITY_HIGH,
        5,
        0,
    )
    assert job.payload["kind"] == "monthly" and job.payload["n"] == 3
    assert job.payload_bytes == b"\x00\x01"
    assert dict(job.metadata) == {"traceparent": "00-abc"}
    assert job.lease_duration.seconds == 90
    assert job.create_time.seconds > 0


async def test_max_attempts_zero_means_the_server_default_of_three(stub: Stub) -> None:
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id
    assert (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job.max_attempts == 3


async def test_a_schedule_time_in_the_future_makes_the_job_scheduled(stub: Stub) -> None:
    when = timestamp_pb2.Timestamp()
    when.GetCurrentTime()
    when.seconds += 3600
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q", schedule_time=when))).job_id

    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job

    assert job.state == job_pb2.JOB_STATE_SCHEDULED
    assert job.schedule_time.seconds == when.seconds


async def test_the_same_idempotency_key_returns_the_first_job(stub: Stub) -> None:
    first = await stub.Enqueue(svc.EnqueueRequest(queue="q", idempotency_key="order-42"))
    second = await stub.Enqueue(svc.EnqueueRequest(queue="q", idempotency_key="order-42"))

    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.job_id == first.job_id
    assert (await stub.Stats(svc.StatsRequest(queue="q"))).queues[0].queued == 1


async def test_a_batch_answers_in_order_across_queues(stub: Stub) -> None:
    requests = [svc.EnqueueRequest(queue=q, payload=payload(i=i)) for i, q in enumerate("abab")]

    responses = (await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests))).responses

    assert [r.job_id.split(":")[0] for r in responses] == ["a", "b", "a", "b"]
    for i, response in enumerate(responses):
        job = (await stub.GetStatus(svc.GetStatusRequest(job_id=response.job_id))).job
        assert job.payload["i"] == i


async def test_stats_with_no_queue_lists_every_known_queue_sorted(stub: Stub) -> None:
    for queue in ("zeta", "alpha", "alpha"):
        await stub.Enqueue(svc.EnqueueRequest(queue=queue))

    stats = (await stub.Stats(svc.StatsRequest())).queues

    assert [(s.queue, s.queued) for s in stats] == [("alpha", 2), ("zeta", 1)]


async def test_unary_ack_fail_and_extend_work_with_a_token_from_the_stream(stub: Stub) -> None:
    ids = [(await stub.Enqueue(svc.EnqueueRequest(queue="q", max_attempts=1))).job_id for _ in range(2)]
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=2)
    first, second = await stream.wait_jobs(2)

    extended = await stub.Extend(
        svc.ExtendRequest(
            job_id=first.job.id,
            lease_token=first.lease_token,
            lease_duration=duration_pb2.Duration(seconds=600),
        )
    )
    await stub.Ack(svc.AckRequest(job_id=first.job.id, lease_token=first.lease_token, result=payload(ok=1)))
    failed = await stub.Fail(
        svc.FailRequest(job_id=second.job.id, lease_token=second.lease_token, error="boom")
    )

    assert extended.lease_expire_time.seconds > first.lease_expire_time.seconds
    assert failed.state == job_pb2.JOB_STATE_DEAD
    states = [(await stub.GetStatus(svc.GetStatusRequest(job_id=i))).job.state for i in ids]
    assert sorted(states) == [job_pb2.JOB_STATE_COMPLETED, job_pb2.JOB_STATE_DEAD]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Ack(svc.AckRequest(job_id=first.job.id, lease_token=first.lease_token))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(raised.value) == "LEASE_LOST"
    await stream.close()


async def test_fail_with_attempts_left_schedules_a_retry_and_reports_when(stub: Stub) -> None:
    await stub.Enqueue(svc.EnqueueRequest(queue="q", max_attempts=3))
    stream = await LeaseStream(stub).subscribe("q")
    (leased,) = await stream.wait_jobs(1)

    failed = await stub.Fail(
        svc.FailRequest(
            job_id=leased.job.id,
            lease_token=leased.lease_token,
            error="flaky",
            retry_delay=duration_pb2.Duration(seconds=120),
        )
    )

    assert failed.state == job_pb2.JOB_STATE_SCHEDULED
    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=leased.job.id))).job
    assert job.state == job_pb2.JOB_STATE_SCHEDULED and job.last_error == "flaky"
    assert failed.schedule_time.seconds == job.schedule_time.seconds
    assert [(e.attempt, e.message) for e in job.errors] == [(1, "flaky")]
    await stream.close()


async def test_cancel_then_retry_sends_the_job_back_to_its_queue(stub: Stub) -> None:
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id

    await stub.Cancel(svc.CancelRequest(job_id=job_id))
    cancelled = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    await stub.Retry(svc.RetryRequest(job_id=job_id))
    retried = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job

    assert cancelled.state == job_pb2.JOB_STATE_CANCELLED and cancelled.finish_time.seconds > 0
    assert retried.state == job_pb2.JOB_STATE_QUEUED and retried.attempts == 0


async def test_cancelling_a_finished_job_is_a_failed_precondition(stub: Stub) -> None:
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q"))).job_id
    await stub.Cancel(svc.CancelRequest(job_id=job_id))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Cancel(svc.CancelRequest(job_id=job_id))

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(raised.value) == "WRONG_STATE"


async def test_an_unknown_job_is_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetStatus(svc.GetStatusRequest(job_id="q:01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(raised.value) == "JOB_NOT_FOUND"
