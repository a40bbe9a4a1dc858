"""Jobs while they run: Cancel of an active job stops its worker's handler (a JobStop on the
stream holding it, on whichever server) and frees its slot; progress and log lines reported on
the stream show in GetStatus; WatchJob streams a job's changes until it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import LeaseStream
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def _enqueue(stub: Stub, queue: str = "q") -> str:
    return str((await stub.Enqueue(svc.EnqueueRequest(queue=queue))).job_id)


@pytest.mark.parametrize("same_server", [True, False])
async def test_cancel_of_a_running_job_stops_it_on_its_stream_and_frees_the_slot(
    stub: Stub, second_stub: Stub, same_server: bool
) -> None:
    stream = await LeaseStream(second_stub).subscribe("q", max_in_flight=1)
    job_id = await _enqueue(stub)
    (leased,) = await stream.wait_jobs(1)

    await (second_stub if same_server else stub).Cancel(svc.CancelRequest(job_id=job_id))

    (stop,) = await stream.wait_stops(1)
    assert (stop.job_id, stop.lease_token, stop.reason) == (
        job_id,
        leased.lease_token,
        svc.STOP_REASON_CANCELLED,
    )
    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert job.state == job_pb2.JOB_STATE_CANCELLED
    # The window of one is free again: the next job comes without an ack.
    following = await _enqueue(stub)
    assert (await stream.wait_jobs(2))[1].job.id == following
    # A late ack of the stopped job is refused.
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await stub.Ack(svc.AckRequest(job_id=job_id, lease_token=leased.lease_token))
    assert error_reason(late.value) == "LEASE_LOST"
    await stream.close()


async def test_progress_and_log_lines_show_in_get_status_the_last_100_kept(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1)
    job_id = await _enqueue(stub)
    (leased,) = await stream.wait_jobs(1)
    token = leased.lease_token

    lines = [f"line {n}" for n in range(150)]
    await stream.call.write(
        svc.LeaseRequest(
            progress=[
                svc.ProgressUpdate(job_id=job_id, lease_token=token, percent=10, logs=lines[:100]),
                svc.ProgressUpdate(job_id=job_id, lease_token=token, logs=["two\nrows", *lines[100:]]),
                svc.ProgressUpdate(job_id=job_id, lease_token=token, percent=55.5, message="resizing"),
                svc.ProgressUpdate(job_id=job_id, lease_token="stale", percent=99),  # dropped
                svc.ProgressUpdate(job_id=job_id, lease_token=token, percent=101),  # dropped: out of range
            ]
        )
    )
    await stream.ack(leased)  # after the progress on the same stream: the reads below see it
    await stream.wait_confirmations(1)

    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert (job.progress.percent, job.progress.message) == (55.5, "resizing")
    logged = [entry.line for entry in job.logs]
    assert len(logged) == 100 and logged[-1] == "line 149" and "two rows" in logged
    assert logged == [*lines[51:100], "two rows", *lines[100:]]
    await stream.close()


async def test_watch_job_streams_each_change_until_the_job_ends(stub: Stub, second_stub: Stub) -> None:
    job_id = await _enqueue(stub)
    watch = stub.WatchJob(svc.WatchJobRequest(job_id=job_id))

    async def following() -> job_pb2.Job:
        response = await watch.read()
        assert isinstance(response, svc.WatchJobResponse)
        return response.job

    first = await following()
    assert first.state == job_pb2.JOB_STATE_QUEUED

    stream = await LeaseStream(second_stub).subscribe("q", max_in_flight=1)  # the other server
    (leased,) = await stream.wait_jobs(1)
    seen = [first]
    while seen[-1].state != job_pb2.JOB_STATE_ACTIVE:
        seen.append(await following())
    await stream.call.write(
        svc.LeaseRequest(
            progress=[svc.ProgressUpdate(job_id=job_id, lease_token=leased.lease_token, percent=50)]
        )
    )
    while seen[-1].progress.percent != 50:
        seen.append(await following())
    await stream.ack(leased, result={"done": True})
    while seen[-1].state != job_pb2.JOB_STATE_COMPLETED:
        seen.append(await following())

    assert seen[-1].result["done"] is True
    assert await watch.read() is grpc.aio.EOF
    assert await watch.code() == grpc.StatusCode.OK
    await stream.close()


async def test_watch_job_of_an_unknown_job_is_not_found(stub: Stub) -> None:
    watch = stub.WatchJob(svc.WatchJobRequest(job_id="q:01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await watch.read()
    assert (
        refused.value.code() == grpc.StatusCode.NOT_FOUND and error_reason(refused.value) == "JOB_NOT_FOUND"
    )


async def test_a_report_sent_with_the_jobs_ack_is_kept(stub: Stub) -> None:
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1)
    job_id = await _enqueue(stub)
    (leased,) = await stream.wait_jobs(1)
    report = svc.ProgressUpdate(job_id=job_id, lease_token=leased.lease_token, percent=100, logs=["done"])

    await stream.call.write(
        svc.LeaseRequest(
            progress=[report], acks=[svc.AckRequest(job_id=job_id, lease_token=leased.lease_token)]
        )
    )
    await stream.wait_confirmations(1)

    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert job.state == job_pb2.JOB_STATE_COMPLETED and job.progress.percent == 100
    assert [entry.line for entry in job.logs] == ["done"]
    await stream.close()
