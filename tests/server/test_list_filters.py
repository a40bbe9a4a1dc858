"""ListJobs filters: by enqueue time and by metadata, applied on the server across pages, with
a bounded amount of reading per call."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import timestamp_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.paging import MAX_EXAMINED
from tests.server.streams import payload
from tests.server.test_unary_calls import bad_request_field

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

QUEUED = job_pb2.JOB_STATE_QUEUED


async def filtered(stub: Stub, page_size: int, **filters: object) -> tuple[list[str], int]:
    """Every job the filtered listing of queue q gives, following tokens; and the calls made."""
    names: list[str] = []
    token, calls = "", 0
    while True:
        page = await stub.ListJobs(
            svc.ListJobsRequest(queue="q", state=QUEUED, page_size=page_size, page_token=token, **filters)  # type: ignore[arg-type]
        )
        calls += 1
        assert len(page.jobs) <= page_size
        names += [str(job.payload["name"]) for job in page.jobs]
        token = page.next_page_token
        if not token:
            return names, calls


async def test_a_metadata_filter_keeps_the_jobs_holding_every_pair_across_pages(stub: Stub) -> None:
    for n in range(30):
        customer = "acme" if n % 3 == 0 else "globex"
        metadata = {"customer": customer, "plan": "pro" if n % 2 == 0 else "free"}
        await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name=f"j{n}"), metadata=metadata))

    acme, _ = await filtered(stub, 4, metadata={"customer": "acme"})
    acme_pro, _ = await filtered(stub, 4, metadata={"customer": "acme", "plan": "pro"})

    assert acme == [f"j{n}" for n in range(0, 30, 3)]
    assert acme_pro == [f"j{n}" for n in range(0, 30, 6)]
    assert (await filtered(stub, 4, metadata={"customer": "initech"}))[0] == []


async def test_a_time_range_keeps_the_jobs_enqueued_within_it(stub: Stub) -> None:
    created = []
    for n in range(4):
        reply = await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name=f"j{n}")))
        job = (await stub.GetStatus(svc.GetStatusRequest(job_id=reply.job_id))).job
        created.append(job.create_time.ToMilliseconds())
        await asyncio.sleep(0.003)  # distinct enqueue times (milliseconds) for the bounds below
    after, before = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    after.FromMilliseconds(created[1])
    before.FromMilliseconds(created[3])

    within, _ = await filtered(stub, 10, created_after=after, created_before=before)
    since, _ = await filtered(stub, 10, created_after=after)

    assert within == ["j1", "j2"]
    assert since == ["j1", "j2", "j3"]


async def test_one_filtered_call_reads_a_bounded_number_of_jobs_and_hands_on_a_token(stub: Stub) -> None:
    unmatched = [svc.EnqueueRequest(queue="q", payload=payload(name="other")) for _ in range(MAX_EXAMINED)]
    for start in range(0, MAX_EXAMINED, 1000):
        await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=unmatched[start : start + 1000]))
    await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name="wanted"), metadata={"k": "v"}))

    first = await stub.ListJobs(svc.ListJobsRequest(queue="q", state=QUEUED, metadata={"k": "v"}))
    names, calls = await filtered(stub, 100, metadata={"k": "v"})

    assert list(first.jobs) == [] and first.next_page_token  # nothing yet, but not the end
    assert first.total_size == MAX_EXAMINED + 1
    assert names == ["wanted"] and calls == 2


async def test_a_page_token_is_valid_only_with_the_same_filters(stub: Stub) -> None:
    for _ in range(3):
        await stub.Enqueue(svc.EnqueueRequest(queue="q", payload=payload(name="x"), metadata={"k": "v"}))
    page = await stub.ListJobs(svc.ListJobsRequest(queue="q", state=QUEUED, page_size=1, metadata={"k": "v"}))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListJobs(svc.ListJobsRequest(queue="q", state=QUEUED, page_token=page.next_page_token))

    assert bad_request_field(raised.value) == "page_token"


def _stamp(seconds: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds)


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"created_after": _stamp(100), "created_before": _stamp(100)}, "created_before"),
        ({"created_after": _stamp(-1)}, "created_after"),
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
        ({"metadata": {"k" * 129: "v"}}, "metadata['" + "k" * 128 + "']"),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(stub: Stub, filters: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListJobs(svc.ListJobsRequest(queue="q", state=QUEUED, **filters))  # type: ignore[arg-type]

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_field(raised.value) == field
