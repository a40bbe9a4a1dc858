"""ListJobs: pages of one queue's jobs in one state, in a useful order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import LeaseStream, payload
from tests.server.test_unary_calls import bad_request_field

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def all_pages(stub: Stub, state: job_pb2.JobState.ValueType, page_size: int) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = await stub.ListJobs(
            svc.ListJobsRequest(queue="q", state=state, page_size=page_size, page_token=token)
        )
        names += [str(job.payload["name"]) for job in page.jobs]
        token = page.next_page_token
        if not token:
            return names


async def test_queued_jobs_are_listed_in_the_order_they_will_be_leased_across_pages(stub: Stub) -> None:
    order = [
        ("low", job_pb2.PRIORITY_LOW),
        ("n1", job_pb2.PRIORITY_NORMAL),
        ("high", job_pb2.PRIORITY_HIGH),
        ("n2", job_pb2.PRIORITY_NORMAL),
        ("n3", job_pb2.PRIORITY_NORMAL),
    ]
    for name, priority in order:
        await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name=name), priority=priority))

    listed = await all_pages(stub, job_pb2.JOB_STATE_QUEUED, page_size=2)
    first = await stub.ListJobs(svc.ListJobsRequest(queue="q", state=job_pb2.JOB_STATE_QUEUED, page_size=2))

    assert listed == ["high", "n1", "n2", "n3", "low"]
    assert first.total_size == 5 and first.next_page_token
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=5)
    leased = [j.job.payload["name"] for j in await stream.wait_jobs(5)]
    assert leased == listed
    await stream.close()


async def test_dead_jobs_are_listed_newest_first_with_their_errors(stub: Stub) -> None:
    for name in ("first", "second"):
        await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name=name), max_attempts=1))
    stream = await LeaseStream(stub).subscribe("q", max_in_flight=1)
    for count in (1, 2):
        (*_, job) = await stream.wait_jobs(count)
        await stream.fail(job, f"broke {job.job.payload['name']}")
        await stream.wait_confirmations(count)

    page = await stub.ListJobs(svc.ListJobsRequest(queue="q", state=job_pb2.JOB_STATE_DEAD))

    assert [(j.payload["name"], j.last_error) for j in page.jobs] == [
        ("second", "broke second"),
        ("first", "broke first"),
    ]
    assert (page.total_size, page.next_page_token) == (2, "")
    await stream.close()


async def test_an_empty_state_lists_nothing(stub: Stub) -> None:
    page = await stub.ListJobs(svc.ListJobsRequest(queue="q", state=job_pb2.JOB_STATE_SCHEDULED))
    assert (list(page.jobs), page.next_page_token, page.total_size) == ([], "", 0)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (svc.ListJobsRequest(queue="q"), "state"),
        (svc.ListJobsRequest(queue="bad queue", state=job_pb2.JOB_STATE_DEAD), "queue"),
        (svc.ListJobsRequest(queue="q", state=job_pb2.JOB_STATE_DEAD, page_size=1001), "page_size"),
        (svc.ListJobsRequest(queue="q", state=job_pb2.JOB_STATE_DEAD, page_token="abc"), "page_token"),
    ],
)
async def test_an_invalid_list_request_names_the_field(
    stub: Stub, request_: svc.ListJobsRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListJobs(request_)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(raised.value) == field


QUEUED = job_pb2.JOB_STATE_QUEUED


async def _first_page_token(stub: Stub, queue: str = "q") -> str:
    for _ in range(3):
        await stub.Enqueue(svc.EnqueueRequest(queue=queue, payload=payload(name="x")))
    page = await stub.ListJobs(svc.ListJobsRequest(queue=queue, state=QUEUED, page_size=1))
    assert page.next_page_token
    return str(page.next_page_token)


async def test_a_page_token_is_opaque_not_a_position(stub: Stub) -> None:
    token = await _first_page_token(stub)

    assert not token.isdigit() and token != "1"
    with pytest.raises(grpc.aio.AioRpcError) as raised:  # the old form: a raw offset
        await stub.ListJobs(svc.ListJobsRequest(queue="q", state=QUEUED, page_token="1"))
    assert bad_request_field(raised.value) == "page_token"


@pytest.mark.parametrize(
    "other",
    [
        svc.ListJobsRequest(queue="other", state=QUEUED),
        svc.ListJobsRequest(queue="q", state=job_pb2.JOB_STATE_DEAD),
    ],
)
async def test_a_page_token_is_refused_with_another_queue_or_state(
    stub: Stub, other: svc.ListJobsRequest
) -> None:
    request = svc.ListJobsRequest(
        queue=other.queue, state=other.state, page_token=await _first_page_token(stub)
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListJobs(request)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(raised.value) == "page_token"


async def test_a_tampered_page_token_is_refused(stub: Stub) -> None:
    token = await _first_page_token(stub)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListJobs(svc.ListJobsRequest(queue="q", state=QUEUED, page_token=tampered))

    assert bad_request_field(raised.value) == "page_token"


async def test_a_page_stops_before_4_mib_and_the_next_page_goes_on_from_there(stub: Stub) -> None:
    # Six 1 MiB jobs would make a 6 MiB page: the test's channel keeps gRPC's default 4 MiB
    # receive limit, so each page must stop early and point at the first job it left out.
    ids = []
    for _ in range(6):
        response = await stub.Enqueue(svc.EnqueueRequest(queue="big", payload_bytes=b"x" * (1024 * 1024)))
        ids.append(response.job_id)

    listed: list[str] = []
    sizes: list[int] = []
    token = ""
    while True:
        page = await stub.ListJobs(
            svc.ListJobsRequest(queue="big", state=QUEUED, page_size=100, page_token=token)
        )
        listed += [job.id for job in page.jobs]
        sizes.append(len(page.jobs))
        token = page.next_page_token
        if not token:
            break

    assert sorted(listed) == sorted(ids) and len(listed) == 6
    assert max(sizes) == 3 and len(sizes) == 2
