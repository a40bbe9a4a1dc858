"""PauseQueue and ResumeQueue through the service: no delivery from a paused queue on any server,
the other queues of a stream still flow, and ResumeQueue wakes the waiting streams at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.config import ServerSettings
from tests.server.streams import LeaseStream

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture
def settings(settings: ServerSettings) -> ServerSettings:
    # A safety sweep far slower than any wait below: only the wake-ups can deliver.
    return settings.model_copy(update={"sweep_interval_seconds": 60.0})


async def _enqueue(stub: Stub, queue: str) -> str:
    return str((await stub.Enqueue(svc.EnqueueRequest(queue=queue))).job_id)


async def _state(stub: Stub, job_id: str) -> int:
    return int((await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job.state)


async def test_a_paused_queue_delivers_nothing_on_any_server_and_resuming_delivers_at_once(
    stub: Stub, second_stub: Stub
) -> None:
    assert (await stub.PauseQueue(svc.PauseQueueRequest(queue="held"))).changed
    stream = await LeaseStream(second_stub).subscribe("held", "open", max_in_flight=4)
    await stream.call.read()  # subscribed
    held = await _enqueue(stub, "held")
    opened = await _enqueue(stub, "open")

    # The open queue's job, enqueued after the held one, comes; the held one stays queued.
    (first,) = await stream.wait_jobs(1)
    assert first.job.id == opened
    assert await _state(stub, held) == job_pb2.JOB_STATE_QUEUED
    (stats,) = (await stub.Stats(svc.StatsRequest(queue="held"))).queues
    assert stats.paused and stats.queued == 1

    assert (await second_stub.ResumeQueue(svc.ResumeQueueRequest(queue="held"))).changed
    second = (await stream.wait_jobs(2, timeout_s=5.0))[1]
    assert second.job.id == held
    await stream.close()


async def test_a_job_running_when_its_queue_is_paused_is_still_acked(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("busy", max_in_flight=2)
    job_id = await _enqueue(stub, "busy")
    (leased,) = await stream.wait_jobs(1)
    await stub.PauseQueue(svc.PauseQueueRequest(queue="busy"))

    await stream.ack(leased)
    (confirmation,) = await stream.wait_confirmations(1)

    assert confirmation.status.code == 0
    assert await _state(stub, job_id) == job_pb2.JOB_STATE_COMPLETED
    await stream.close()


async def test_repeating_a_pause_or_a_resume_says_nothing_changed(stub: Stub) -> None:
    assert (await stub.PauseQueue(svc.PauseQueueRequest(queue="twice"))).changed
    assert not (await stub.PauseQueue(svc.PauseQueueRequest(queue="twice"))).changed
    assert (await stub.ResumeQueue(svc.ResumeQueueRequest(queue="twice"))).changed
    assert not (await stub.ResumeQueue(svc.ResumeQueueRequest(queue="twice"))).changed


@pytest.mark.parametrize("method", ["PauseQueue", "ResumeQueue"])
@pytest.mark.parametrize("queue", ["", "has space", "a{b}", "x" * 129])
async def test_a_bad_queue_name_is_refused_naming_the_field(stub: Stub, method: str, queue: str) -> None:
    request = (
        svc.PauseQueueRequest(queue=queue) if method == "PauseQueue" else svc.ResumeQueueRequest(queue=queue)
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await getattr(stub, method)(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    assert status is not None
    assert _fields(status) == ["queue"]
    assert (await stub.Stats(svc.StatsRequest())).queues == []


def _fields(status: status_pb2.Status) -> list[str]:
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [violation.field for violation in bad.field_violations]
    return fields
