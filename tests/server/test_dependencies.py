"""Job dependencies over gRPC: a job enqueued with `depends_on` stays WAITING until every parent
COMPLETED, then is QUEUED; a failed parent applies the child's policy (cancel, dead-letter, run
anyway), down the graph; a batch draws a graph with refs and is refused with a cycle; parents may
be in other queues and settle on other servers; fan-out and fan-in of thousands of jobs."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import json_format

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import LeaseStream, payload, wait_for_state
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub
    from jobqueue_server.runtime.app import App

WAITING, QUEUED, CANCELLED, DEAD, COMPLETED = (
    job_pb2.JOB_STATE_WAITING,
    job_pb2.JOB_STATE_QUEUED,
    job_pb2.JOB_STATE_CANCELLED,
    job_pb2.JOB_STATE_DEAD,
    job_pb2.JOB_STATE_COMPLETED,
)


async def _enqueue(stub: Stub, queue: str = "q", **fields: object) -> str:
    return str((await stub.Enqueue(svc.EnqueueRequest(queue=queue, **fields))).job_id)  # type: ignore[arg-type]


async def _state(stub: Stub, job_id: str) -> int:
    return int((await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job.state)


async def _run_one(stub: Stub, queue: str, result: dict[str, object] | None = None) -> svc.LeasedJob:
    """Leases the next job of `queue` and acks it."""
    stream = await LeaseStream(stub).subscribe(queue, max_in_flight=1)
    (leased,) = await stream.wait_jobs(1)
    await stream.ack(leased, result=result)
    await stream.wait_confirmations(1)
    await stream.close()
    return leased


async def test_a_child_waits_for_its_parent_and_reads_its_result(stub: Stub) -> None:
    parent = await _enqueue(stub, "parents")
    child = await _enqueue(stub, "children", depends_on=[parent])
    assert await _state(stub, child) == WAITING
    stats = (await stub.Stats(svc.StatsRequest(queue="children"))).queues[0]
    assert (stats.waiting, stats.queued) == (1, 0)

    await _run_one(stub, "parents", result={"rows": 42})

    leased = (await _run_one(stub, "children")).job
    assert leased.id == child
    assert list(leased.depends_on) == [parent]
    parent_job = (await stub.GetStatus(svc.GetStatusRequest(job_id=leased.depends_on[0]))).job
    assert json_format.MessageToDict(parent_job.result) == {"rows": 42}


async def test_a_child_of_jobs_that_already_completed_is_queued_at_once(stub: Stub) -> None:
    parent = await _enqueue(stub)
    await _run_one(stub, "q")
    child = await _enqueue(stub, depends_on=[parent])
    assert await _state(stub, child) == QUEUED


async def test_a_child_waits_for_every_parent(stub: Stub) -> None:
    first, second = await _enqueue(stub, "a"), await _enqueue(stub, "b")
    child = await _enqueue(stub, "c", depends_on=[first, second])
    await _run_one(stub, "a")
    assert await _state(stub, child) == WAITING
    await _run_one(stub, "b")
    await wait_for_state(stub, child, QUEUED)


@pytest.mark.parametrize(
    ("policy", "ends"),
    [
        (job_pb2.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED, CANCELLED),
        (job_pb2.DEPENDENCY_FAILURE_POLICY_CANCEL, CANCELLED),
        (job_pb2.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER, DEAD),
        (job_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY, QUEUED),
    ],
)
async def test_a_dead_parent_applies_the_childs_policy(stub: Stub, policy: int, ends: int) -> None:
    parent = await _enqueue(stub, "p", max_attempts=1)
    child = await _enqueue(stub, "c", depends_on=[parent], on_dependency_failure=policy)
    stream = await LeaseStream(stub).subscribe("p", max_in_flight=1)
    (leased,) = await stream.wait_jobs(1)
    await stream.fail(leased, "boom")
    await stream.wait_confirmations(1)
    await stream.close()

    job = (await wait_for_state(stub, child, ends)).job
    if ends != QUEUED:
        assert job.last_error == f"dependency {parent} ended DEAD"
        assert job.on_dependency_failure == (policy or job_pb2.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED)


async def test_a_cancelled_parent_cancels_the_whole_chain_below_it(stub: Stub) -> None:
    top = await _enqueue(stub)
    middle = await _enqueue(stub, depends_on=[top])
    bottom = await _enqueue(stub, depends_on=[middle])
    await stub.Cancel(svc.CancelRequest(job_id=top))
    assert (
        await wait_for_state(stub, bottom, CANCELLED)
    ).job.last_error == f"dependency {middle} ended CANCELLED"
    assert await _state(stub, middle) == CANCELLED


async def test_cancel_of_a_waiting_job_and_listing_waiting_jobs(stub: Stub) -> None:
    parent = await _enqueue(stub)
    children = [await _enqueue(stub, depends_on=[parent]) for _ in range(3)]
    listed = await stub.ListJobs(svc.ListJobsRequest(queue="q", state=WAITING))
    assert [job.id for job in listed.jobs] == children
    await stub.Cancel(svc.CancelRequest(job_id=children[0]))
    assert await _state(stub, children[0]) == CANCELLED
    await _run_one(stub, "q")  # the parent
    for child in children[1:]:
        await wait_for_state(stub, child, QUEUED)
    assert await _state(stub, children[0]) == CANCELLED


async def test_a_child_with_a_delay_is_scheduled_once_released(stub: Stub) -> None:
    parent = await _enqueue(stub)
    child = await _enqueue(stub, depends_on=[parent], delay={"seconds": 3600})
    await _run_one(stub, "q")
    await wait_for_state(stub, child, job_pb2.JOB_STATE_SCHEDULED)


async def test_a_batch_draws_a_graph_with_refs(stub: Stub) -> None:
    requests = [
        svc.EnqueueRequest(
            queue="q", ref="report", depends_on_refs=["fetch-a", "fetch-b"], payload=payload(n=3)
        ),
        svc.EnqueueRequest(queue="q", ref="fetch-a", payload=payload(n=1)),
        svc.EnqueueRequest(queue="other", ref="fetch-b", payload=payload(n=2)),
    ]
    ids = [r.job_id for r in (await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests))).responses]
    assert await _state(stub, ids[0]) == WAITING
    assert list((await stub.GetStatus(svc.GetStatusRequest(job_id=ids[0]))).job.depends_on) == ids[1:]
    await _run_one(stub, "other")
    assert (await _run_one(stub, "q")).job.id == ids[1]
    assert (await _run_one(stub, "q")).job.id == ids[0]


@pytest.mark.parametrize(
    ("requests", "field"),
    [
        (
            [
                svc.EnqueueRequest(queue="q", ref="a", depends_on_refs=["c"]),
                svc.EnqueueRequest(queue="q", ref="b", depends_on_refs=["a"]),
                svc.EnqueueRequest(queue="q", ref="c", depends_on_refs=["b"]),
                svc.EnqueueRequest(queue="q", depends_on_refs=["c"]),
            ],
            "depends_on_refs",
        ),
        ([svc.EnqueueRequest(queue="q", ref="a", depends_on_refs=["a"])], "requests[0].depends_on_refs"),
        ([svc.EnqueueRequest(queue="q", depends_on_refs=["nope"])], "requests[0].depends_on_refs[0]"),
        ([svc.EnqueueRequest(queue="q", ref="a"), svc.EnqueueRequest(queue="q", ref="a")], "requests[1].ref"),
        ([svc.EnqueueRequest(queue="q", depends_on=["not an id"])], "requests[0].depends_on[0]"),
    ],
)
async def test_a_bad_graph_is_refused_and_nothing_is_written(
    stub: Stub, requests: list[svc.EnqueueRequest], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=requests))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (refused.value.details() or "")
    assert not (await stub.Stats(svc.StatsRequest(queue="q"))).queues[0].waiting


async def test_an_unknown_parent_is_refused_with_not_found(stub: Stub) -> None:
    known = await _enqueue(stub)
    unknown = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _enqueue(stub, depends_on=[known, unknown])
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(refused.value) == "JOB_NOT_FOUND"
    assert "depends_on[1]" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as outside_a_batch:
        await _enqueue(stub, ref="a")
    assert outside_a_batch.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_parents_settled_on_another_server_release_the_child(stub: Stub, second_stub: Stub) -> None:
    parents = [await _enqueue(stub, f"p{n}") for n in range(3)]
    child = await _enqueue(stub, "c", depends_on=parents)
    for n in range(3):
        await _run_one(second_stub if n % 2 else stub, f"p{n}")
    await wait_for_state(stub, child, QUEUED)


FAN = 2_000


async def test_fan_out_and_fan_in_of_thousands(stub: Stub) -> None:
    """One parent, FAN children (released together); the FAN children, one grandchild."""
    root = await _enqueue(stub, "root")
    children: list[str] = []
    for _ in range(FAN // 1_000):
        batch = [svc.EnqueueRequest(queue="fan", depends_on=[root]) for _ in range(1_000)]
        children += [
            r.job_id for r in (await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=batch))).responses
        ]
    sink = await _enqueue(stub, "sink", depends_on=children[:1_000])
    sink_rest = await _enqueue(stub, "sink", depends_on=children[1_000:])

    await _run_one(stub, "root")
    stats = await _wait_stats(stub, "fan", lambda s: s.queued == FAN)
    assert stats.waiting == 0

    stream = await LeaseStream(stub).subscribe("fan", max_in_flight=500)
    acked = 0
    while acked < FAN:
        await stream.wait_jobs(acked + 1)
        await stream.ack(*stream.jobs[acked:])
        acked = len(stream.jobs)
    await stream.close()
    await wait_for_state(stub, sink, QUEUED)
    await wait_for_state(stub, sink_rest, QUEUED)


async def _wait_stats(stub: Stub, queue: str, condition: object) -> job_pb2.QueueStats:
    async with asyncio.timeout(30):
        while True:
            stats = (await stub.Stats(svc.StatsRequest(queue=queue))).queues[0]
            if condition(stats):  # type: ignore[operator]
                return stats
            await asyncio.sleep(0.05)


async def test_a_server_that_died_mid_enqueue_leaves_work_the_maintenance_pass_finishes(
    app: App, stub: Stub, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two halves a dying server can leave: a child written WAITING but not attached to its
    parent, and a parent that ended with its children not yet told."""
    store = app.store
    parent = await _enqueue(stub)
    child = await _enqueue(stub, depends_on=[parent])
    k = store.keys("q")
    parent_ulid, child_ulid = parent.rpartition(":")[2], child.rpartition(":")[2]
    # Undo the attach step and mark the child as stuck attaching long ago.
    await redis.delete(k.children_prefix + parent_ulid, k.dependents)
    await redis.zadd(k.attaching, {child_ulid: 0})
    app.maintenance.wake_at(0)  # the next pass is a full look
    await app.maintenance.sweep_once()
    assert await redis.sismember(k.children_prefix + parent_ulid, child) == 1
    assert await redis.zcard(k.attaching) == 0

    # A parent that ended while the resolution failed (a server dying in it): the pass finds it.
    async def lost(queue: str) -> dict[str, int]:
        return {}

    monkeypatch.setattr(store.dependencies, "resolve_settled", lost)
    await _run_one(stub, "q")
    await wait_for_state(stub, parent, COMPLETED)
    await app.resolver.idle()
    assert await _state(stub, child) == WAITING
    assert await redis.scard(k.settled) == 1
    monkeypatch.undo()
    app.maintenance.wake_at(0)
    await app.maintenance.sweep_once()
    await app.resolver.idle()
    await wait_for_state(stub, child, QUEUED)
    assert await redis.scard(k.settled) == 0
    assert await redis.exists(k.children_prefix + parent_ulid, k.parents_prefix + child_ulid) == 0
