"""The Lease stream: credit window, settlement on the stream, release at the end, wake-ups."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import code_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import lease_session
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App
from tests.server.streams import LeaseStream, payload, wait_for_state

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def enqueue(stub: Stub, queue: str = "q", **fields: object) -> str:
    response = await stub.Enqueue(svc.EnqueueRequest(queue=queue, payload=payload(**fields)))
    return str(response.job_id)


async def test_a_worker_receives_a_job_acks_it_and_the_result_is_stored(stub: Stub) -> None:
    job_id = await enqueue(stub, "emails", to="user@example.com")
    stream = await LeaseStream(stub).subscribe("emails")

    (leased,) = await stream.wait_jobs(1)
    assert leased.job.id == job_id and leased.job.attempts == 1
    assert leased.job.payload["to"] == "user@example.com"
    await stream.ack(leased, result={"sent": True})
    (confirmation,) = await stream.wait_confirmations(1)

    assert confirmation.status.code == code_pb2.OK and confirmation.job_id == job_id
    done = await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))
    assert done.job.state == job_pb2.JOB_STATE_COMPLETED
    assert done.job.result["sent"] is True
    await stream.close()


async def test_the_server_never_sends_more_than_max_in_flight_unsettled_jobs(stub: Stub) -> None:
    for n in range(20):
        await enqueue(stub, n=n)
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=3)

    first = await stream.wait_jobs(3)
    # Nothing more may come while 3 are held: settle one and exactly one more arrives.
    await stream.ack(first[0])
    await stream.wait_confirmations(1)
    await stream.wait_jobs(4)
    assert len(stream.jobs) == 4
    await stream.ack(*stream.jobs[1:4])
    await stream.wait_jobs(7)

    assert len(stream.jobs) == 7
    stats = await stub.Stats(svc.StatsRequest(queue="q"))
    assert stats.queues[0].active == 3
    await stream.close()


async def test_raising_max_in_flight_on_an_open_stream_sends_more_jobs(stub: Stub) -> None:
    for n in range(5):
        await enqueue(stub, n=n)
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1)
    await stream.wait_jobs(1)

    await stream.call.write(svc.LeaseRequest(subscribe=svc.Subscribe(max_in_flight=4)))

    assert len(await stream.wait_jobs(4)) == 4
    await stream.close()


async def test_jobs_held_by_a_closed_stream_go_back_to_the_queue_at_once(stub: Stub) -> None:
    job_id = await enqueue(stub)
    stream = await LeaseStream(stub).subscribe("q", lease_ms=600_000)
    await stream.wait_jobs(1)

    await stream.close()

    status = await wait_for_state(stub, job_id, job_pb2.JOB_STATE_QUEUED)
    assert status.job.attempts == 1
    assert status.job.last_error == "lease released: stream closed"
    again = await LeaseStream(stub).subscribe("q")
    (leased,) = await again.wait_jobs(1)
    assert leased.job.id == job_id and leased.job.attempts == 2
    await again.close()


async def test_a_cancelled_stream_releases_its_jobs(stub: Stub) -> None:
    job_id = await enqueue(stub)
    stream = await LeaseStream(stub).subscribe("q", lease_ms=600_000)
    await stream.wait_jobs(1)

    stream.call.cancel()

    await wait_for_state(stub, job_id, job_pb2.JOB_STATE_QUEUED)


async def test_a_stale_token_is_refused_on_the_stream_and_changes_nothing(stub: Stub) -> None:
    job_id = await enqueue(stub)
    stream = await LeaseStream(stub).subscribe("q")
    (leased,) = await stream.wait_jobs(1)
    stale = svc.LeasedJob(job=leased.job, lease_token=leased.lease_token + "x")

    await stream.ack(stale)
    (confirmation,) = await stream.wait_confirmations(1)

    assert confirmation.status.code == code_pb2.FAILED_PRECONDITION
    status = await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))
    assert status.job.state == job_pb2.JOB_STATE_ACTIVE
    await stream.close()


async def test_a_malformed_ack_is_refused_with_the_field_named(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("q")
    await stream.call.write(svc.LeaseRequest(acks=[svc.AckRequest(job_id="nonsense", lease_token="t")]))

    (confirmation,) = await stream.wait_confirmations(1)

    assert confirmation.status.code == code_pb2.INVALID_ARGUMENT
    assert "acks[0].job_id" in confirmation.status.message
    await stream.close()


async def test_a_first_message_without_subscribe_ends_the_stream_with_invalid_argument(stub: Stub) -> None:
    call = stub.Lease()
    await call.write(svc.LeaseRequest(acks=[]))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "subscribe" in (raised.value.details() or "")


@pytest.mark.parametrize(
    ("subscribe", "field"),
    [
        (svc.Subscribe(queues=[]), "subscribe.queues"),
        (svc.Subscribe(queues=["ok", "bad name"]), "subscribe.queues[1]"),
        (svc.Subscribe(queues=["q"], max_in_flight=1_000_000), "subscribe.max_in_flight"),
        (
            svc.Subscribe(queues=["q"], lease_duration=duration_pb2.Duration(seconds=-1)),
            "subscribe.lease_duration",
        ),
    ],
)
async def test_an_invalid_subscribe_is_refused_with_the_field_named(
    stub: Stub, subscribe: svc.Subscribe, field: str
) -> None:
    call = stub.Lease()
    await call.write(svc.LeaseRequest(subscribe=subscribe))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call.read()

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "")


async def test_jobs_come_high_priority_first_then_in_order_of_arrival(stub: Stub) -> None:
    order = [
        ("low-1", job_pb2.PRIORITY_LOW),
        ("normal-1", job_pb2.PRIORITY_UNSPECIFIED),
        ("high-1", job_pb2.PRIORITY_HIGH),
        ("normal-2", job_pb2.PRIORITY_NORMAL),
        ("high-2", job_pb2.PRIORITY_HIGH),
        ("low-2", job_pb2.PRIORITY_LOW),
    ]
    for name, priority in order:
        await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name=name), priority=priority))
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=6)

    jobs = await stream.wait_jobs(6)

    assert [j.job.payload["name"] for j in jobs] == [
        "high-1",
        "high-2",
        "normal-1",
        "normal-2",
        "low-1",
        "low-2",
    ]
    await stream.close()


async def test_a_stream_takes_from_its_queues_in_order_of_preference(stub: Stub) -> None:
    await enqueue(stub, "bulk", name="bulk")
    await enqueue(stub, "urgent", name="urgent")
    stream = await LeaseStream(stub).subscribe("urgent", "bulk", max_in_flight=2)

    jobs = await stream.wait_jobs(2)

    assert [j.job.payload["name"] for j in jobs] == ["urgent", "bulk"]
    await stream.close()


@pytest.fixture
def settings(settings: ServerSettings) -> ServerSettings:
    # A safety sweep far slower than any wait below: only signals and timers can pass.
    return settings.model_copy(update={"sweep_interval_seconds": 60.0})


async def test_an_idle_worker_is_woken_by_a_new_job_without_the_safety_sweep(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("q")
    await asyncio.sleep(0.1)  # let the stream go idle; the assertion below does not depend on it

    job_id = await enqueue(stub)

    (leased,) = await stream.wait_jobs(1, timeout_s=5.0)
    assert leased.job.id == job_id
    await stream.close()


async def test_an_idle_worker_is_woken_by_a_job_enqueued_on_another_server(
    stub: Stub, second_stub: Stub
) -> None:
    stream = await LeaseStream(stub).subscribe("q")
    await asyncio.sleep(0.1)

    job_id = await enqueue(second_stub)

    (leased,) = await stream.wait_jobs(1, timeout_s=5.0)
    assert leased.job.id == job_id
    await stream.close()


async def test_a_delayed_job_is_delivered_when_due_by_the_timer_not_the_sweep(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("q")
    response = await stub.Enqueue(
        svc.EnqueueRequest(queue="q", delay=duration_pb2.Duration(nanos=300_000_000))
    )

    (leased,) = await stream.wait_jobs(1, timeout_s=5.0)

    assert leased.job.id == response.job_id
    due = leased.job.schedule_time.ToMilliseconds()
    assert leased.job.start_time.ToMilliseconds() >= due
    await stream.close()


async def test_an_expired_lease_is_reaped_and_the_late_ack_refused(stub: Stub, app: App) -> None:
    job_id = await enqueue(stub)
    first = await LeaseStream(stub).subscribe("q", lease_ms=200)
    (leased,) = await first.wait_jobs(1)

    second = await LeaseStream(stub).subscribe("q")
    (again,) = await second.wait_jobs(1, timeout_s=5.0)
    await first.ack(leased)
    (refused,) = await first.wait_confirmations(1)

    assert again.job.id == job_id and again.job.attempts == 2
    assert refused.status.code == code_pb2.FAILED_PRECONDITION
    await second.ack(again)
    await wait_for_state(stub, job_id, job_pb2.JOB_STATE_COMPLETED)
    await first.close()
    await second.close()


async def test_a_window_of_zero_on_an_open_stream_pauses_delivery(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1)
    first_id = await enqueue(stub)
    (first,) = await stream.wait_jobs(1)

    await stream.call.write(svc.LeaseRequest(subscribe=svc.Subscribe(max_in_flight=0)))
    second_id = await enqueue(stub)
    await stream.ack(first)
    await stream.wait_confirmations(1)
    paused = (await stub.Stats(svc.StatsRequest(queue="q"))).queues[0]
    await stream.call.write(svc.LeaseRequest(subscribe=svc.Subscribe(max_in_flight=1)))
    (_, second) = await stream.wait_jobs(2)

    assert (paused.queued, paused.active) == (1, 0)
    assert (first.job.id, second.job.id) == (first_id, second_id)
    await stream.close()


@pytest.mark.parametrize("payload_size", [600_000, 1024 * 1024])
async def test_big_jobs_reach_a_client_with_grpcs_default_4_mib_message_limit(
    stub: Stub, payload_size: int
) -> None:
    # One window of six jobs with 64 metadata values of 4 KiB each (0.26 MB a job): 5.2 MB or
    # 7.9 MB in all. The test's channel keeps gRPC's default receive limit of 4 MiB, so a larger
    # message would end the stream with RESOURCE_EXHAUSTED: every byte of a job must count.
    blob = b"x" * payload_size
    metadata = {f"key-{index:02d}": "v" * 4096 for index in range(64)}
    for _ in range(6):
        await stub.Enqueue(svc.EnqueueRequest(queue="q", payload_bytes=blob, metadata=metadata))
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=6)

    jobs = await stream.wait_jobs(6)

    assert all(j.job.payload_bytes == blob and dict(j.job.metadata) == metadata for j in jobs)
    assert stream.messages >= 3  # the subscription's empty answer, then at least two for the jobs
    await stream.ack(*jobs)
    confirmations = await stream.wait_confirmations(6)
    assert all(c.status.code == code_pb2.OK for c in confirmations)
    await stream.close()


async def test_a_resent_subscribe_that_repeats_its_fields_only_changes_the_window(stub: Stub) -> None:
    for _ in range(3):
        await enqueue(stub)
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1, lease_ms=60_000, worker_id="w")
    await stream.wait_jobs(1)

    await stream.subscribe("q", max_in_flight=3, lease_ms=60_000, worker_id="w")

    jobs = await stream.wait_jobs(3)
    assert {j.job.worker_id for j in jobs} == {"w"}
    await stream.close()


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"queues": ["other"]}, "subscribe.queues", "subscribed with q, got other"),
        ({"worker_id": "w2"}, "subscribe.worker_id", "subscribed with 'w', got 'w2'"),
        ({"lease_ms": 30_000}, "subscribe.lease_duration", "subscribed with 60 s, got 30 s"),
    ],
)
async def test_a_resent_subscribe_that_changes_a_field_ends_the_stream_saying_what_changed(
    stub: Stub, change: dict[str, object], field: str, says: str
) -> None:
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1, lease_ms=60_000, worker_id="w")
    await stream.call.read()  # the subscription's answer
    queues = change.get("queues", ["q"])
    assert isinstance(queues, list)
    lease_ms = change.get("lease_ms", 60_000)
    assert isinstance(lease_ms, int)
    await stream.subscribe(
        *queues, max_in_flight=1, lease_ms=lease_ms, worker_id=str(change.get("worker_id", "w"))
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stream.call.read()

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == f"{field}: cannot change on an open stream: {says}"


async def test_an_extend_without_a_length_keeps_the_streams_lease_length(stub: Stub) -> None:
    await enqueue(stub)
    stream = await LeaseStream(stub).subscribe("q", lease_ms=300_000)
    (leased,) = await stream.wait_jobs(1)

    await stream.call.write(
        svc.LeaseRequest(extends=[svc.ExtendRequest(job_id=leased.job.id, lease_token=leased.lease_token)])
    )
    (confirmation,) = await stream.wait_confirmations(1)

    granted = confirmation.lease_expire_time.ToMilliseconds() - leased.job.start_time.ToMilliseconds()
    assert confirmation.kind == svc.CONFIRMATION_KIND_EXTEND
    assert granted >= 300_000
    await stream.close()


@pytest.fixture
def long_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Confirmations with no job to go with wait a minute: only a job or the end sends them."""
    monkeypatch.setattr(lease_session, "CONFIRMATION_LINGER_S", 60.0)


@pytest.mark.usefixtures("long_linger")
async def test_an_ack_is_confirmed_in_the_message_of_the_next_job(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("steady", max_in_flight=4)
    await enqueue(stub, "steady")
    (first,) = await stream.wait_jobs(1)
    await stream.ack(first)
    second_id = await enqueue(stub, "steady")

    second = (await stream.wait_jobs(2))[1]

    # One message carried the job and the confirmation of the ack sent before it.
    assert second.job.id == second_id
    assert [c.job_id for c in stream.confirmations] == [first.job.id]
    assert stream.messages == 3  # subscribed, first job, second job with the confirmation
    await stream.close()


@pytest.mark.usefixtures("long_linger")
async def test_confirmations_waiting_for_a_job_are_sent_when_the_worker_closes(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("closing", max_in_flight=4)
    job_id = await enqueue(stub, "closing")
    (leased,) = await stream.wait_jobs(1)
    await stream.ack(leased)
    await stream.call.done_writing()

    (confirmation,) = await stream.wait_confirmations(1)

    assert confirmation.job_id == job_id and confirmation.status.code == code_pb2.OK
    assert await stream.call.read() is grpc.aio.EOF
