"""Partitioned queues through the service: CreateQueue declares and grows them, jobs spread
over the partitions (by key when one is given, FIFO per key), and every RPC sees one queue:
Stats, ListJobs, Lease streams on any server, pause, limits, cancel and retry."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import pytest

from jobqueue import AsyncClient, InvalidArgument
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.runtime.app import App
from tests.server.streams import LeaseStream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture
async def client(app: App) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{app.port}", batching=None) as client:
        yield client


def _partition(job_id: str) -> str:
    return job_id.rpartition(":")[0]


async def test_create_queue_declares_grows_and_never_shrinks(client: AsyncClient) -> None:
    made = await client.create_queue("orders", partitions=3)
    assert (made.queue, made.partitions, made.changed) == ("orders", 3, True)
    again = await client.create_queue("orders", partitions=3)
    assert (again.partitions, again.changed) == (3, False)
    with pytest.raises(InvalidArgument, match="never removed") as refused:
        await client.create_queue("orders", partitions=2)
    assert refused.value.field == "partitions"
    with pytest.raises(InvalidArgument) as too_many:
        await client.create_queue("orders", partitions=65)
    assert too_many.value.field == "partitions"
    grown = await client.create_queue("orders", partitions=5)
    assert (grown.partitions, grown.changed) == (5, True)
    plain = await client.create_queue("plain")
    assert (plain.partitions, plain.changed) == (1, True)
    (stats,) = await client.stats("orders")
    assert stats.partitions == 5 and stats.queued == 0
    assert [s.queue for s in await client.stats()] == ["orders", "plain"]  # created, not enqueued to


async def test_jobs_spread_over_the_partitions_and_the_queue_stays_one(client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=3)
    ids = [(await client.enqueue("orders", {"n": n})).job_id for n in range(30)]
    assert sorted({_partition(i) for i in ids}) == ["orders", "orders~1", "orders~2"]
    assert {(await client.get(i)).queue for i in ids} == {"orders"}
    (stats,) = await client.stats("orders")
    assert (stats.queued, stats.partitions) == (30, 3)
    assert [s.queue for s in await client.stats()] == ["orders"]  # the partitions are not queues
    listed = [job.id async for job in client.list_jobs("orders", "queued", page_size=7)]
    assert sorted(listed) == sorted(ids)


async def test_the_jobs_without_a_key_of_one_batch_stay_together_and_batches_take_turns(
    client: AsyncClient,
) -> None:
    await client.create_queue("orders", partitions=3)
    jobs = [{"queue": "orders", "payload": {"n": n}} for n in range(10)]
    batches = [await client.enqueue_many(jobs) for _ in range(3)]
    partitions = [{_partition(result.job_id) for result in batch} for batch in batches]
    assert all(len(found) == 1 for found in partitions)  # one script call per batch
    assert set.union(*partitions) == {"orders", "orders~1", "orders~2"}


async def test_a_partition_key_keeps_its_jobs_together_and_in_order(stub: Stub, client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=3)
    enqueued: dict[str, list[str]] = {}
    for n in range(12):
        key = f"customer-{n % 4}"
        reply = await client.enqueue("orders", {"n": n}, partition_key=key)
        enqueued.setdefault(key, []).append(reply.job_id)
    for ids in enqueued.values():
        assert len({_partition(i) for i in ids}) == 1
    stream = await LeaseStream(stub).subscribe("orders", max_in_flight=1)
    leased: list[str] = []
    while len(leased) < 12:
        (job,) = (await stream.wait_jobs(len(leased) + 1))[-1:]
        leased.append(job.job.id)
        await stream.ack(job)
    for ids in enqueued.values():
        assert [i for i in leased if i in ids] == ids
    await stream.close()


async def test_a_stream_on_any_server_gets_the_jobs_of_every_partition(
    stub: Stub, second_stub: Stub, client: AsyncClient
) -> None:
    await client.create_queue("orders", partitions=3)
    stream = await LeaseStream(second_stub).subscribe("orders", max_in_flight=30)
    await stream.call.read()  # subscribed
    ids = {(await client.enqueue("orders", {"n": n})).job_id for n in range(9)}
    jobs = await stream.wait_jobs(9)
    assert {job.job.id for job in jobs} == ids
    assert {job.job.queue for job in jobs} == {"orders"}
    await stream.close()


async def test_keys_that_must_meet_go_to_one_partition(client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=4)
    first = await client.enqueue("orders", {}, idempotency_key="order-17")
    again = await client.enqueue("orders", {}, idempotency_key="order-17")
    assert again.duplicate and again.job_id == first.job_id
    unique = [await client.enqueue("orders", {}, unique_key="nightly") for _ in range(3)]
    assert {u.job_id for u in unique} == {unique[0].job_id}


async def test_cancel_retry_and_listing_by_state_reach_every_partition(client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=3)
    ids = [(await client.enqueue("orders", {"n": n}, delay=3600)).job_id for n in range(6)]
    for job_id in ids:
        await client.cancel(job_id)
    cancelled = [job.id async for job in client.list_jobs("orders", "cancelled", page_size=4)]
    assert sorted(cancelled) == sorted(ids)
    await client.retry(ids[2])
    assert (await client.get(ids[2])).state == "queued"
    (stats,) = await client.stats("orders")
    assert (stats.cancelled, stats.queued) == (5, 1)


async def test_dead_jobs_of_every_partition_are_listed_and_retried(stub: Stub, client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=3)
    ids = {(await client.enqueue("orders", {"n": n}, max_attempts=1)).job_id for n in range(6)}
    stream = await LeaseStream(stub).subscribe("orders", max_in_flight=6)
    for job in await stream.wait_jobs(6):
        await stream.fail(job, "smtp: 550", non_retryable=True)
    await stream.wait_confirmations(6)
    await stream.close()
    dead = [job.id async for job in client.list_jobs("orders", "dead", page_size=4)]
    assert sorted(dead) == sorted(ids) and len({_partition(i) for i in dead}) == 3
    for job_id in dead:
        await client.retry(job_id)
    (stats,) = await client.stats("orders")
    assert (stats.dead, stats.queued) == (0, 6)


async def test_pause_and_resume_hold_and_release_every_partition(stub: Stub, client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=3)
    assert await client.pause_queue("orders")
    stream = await LeaseStream(stub).subscribe("orders", max_in_flight=10)
    await stream.call.read()  # subscribed
    ids = {(await client.enqueue("orders", {"n": n})).job_id for n in range(6)}
    (stats,) = await client.stats("orders")
    assert stats.paused and stats.queued == 6
    assert await client.resume_queue("orders")
    assert {job.job.id for job in await stream.wait_jobs(6)} == ids
    await stream.close()


async def test_limits_are_the_queues_and_each_partition_enforces_a_share(client: AsyncClient) -> None:
    await client.create_queue("orders", partitions=3)
    with pytest.raises(InvalidArgument) as refused:
        await client.set_queue_limits("orders", max_active=2)
    assert refused.value.field == "limits.max_active"
    await client.set_queue_limits("orders", rate_per_second=30, max_active=4)
    (stats,) = await client.stats("orders")
    assert stats.limits is not None
    assert stats.limits.rate_per_second == pytest.approx(30)
    assert stats.limits.max_active == 4
    with pytest.raises(InvalidArgument) as too_few:
        await client.create_queue("orders", partitions=5)  # 4 running jobs over 5 partitions
    assert too_few.value.field == "the queue's limits.max_active"
    await client.create_queue("orders", partitions=4)
    (stats,) = await client.stats("orders")
    assert stats.limits is not None and stats.limits.max_active == 4 and stats.partitions == 4


async def test_growing_a_queue_keeps_its_jobs_where_they_are(stub: Stub, client: AsyncClient) -> None:
    old = [(await client.enqueue("orders", {"n": n})).job_id for n in range(4)]
    assert {_partition(i) for i in old} == {"orders"}
    await client.create_queue("orders", partitions=2)
    new = [(await client.enqueue("orders", {"n": n})).job_id for n in range(4)]
    assert {_partition(i) for i in new} == {"orders", "orders~1"}
    stream = await LeaseStream(stub).subscribe("orders", max_in_flight=10)
    assert {job.job.id for job in await stream.wait_jobs(8)} == set(old + new)
    await stream.close()


async def test_a_partitions_job_id_is_refused_nowhere_and_a_made_up_one_is_not_found(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetStatus(svc.GetStatusRequest(job_id="orders~7:01HZZZZZZZZZZZZZZZZZZZZZZZ"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stub.GetStatus(svc.GetStatusRequest(job_id="orders~0:01HZZZZZZZZZZZZZZZZZZZZZZZ"))
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
