"""The queue registry is bounded (max_queues) and Stats pages through it: a producer cannot make
the server carry unbounded queue names, and Stats of every queue stays one bounded message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue import AsyncClient
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture
async def small_app(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    bounded = settings.model_copy(update={"max_queues": 3})
    running = await start_app(bounded, Store(redis, store_config(bounded)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def small_stub(small_app: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{small_app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


async def _keys(redis: Redis, prefix: str) -> set[bytes]:
    return {key async for key in redis.scan_iter(match=f"{prefix}:*")}


async def test_a_request_making_one_queue_too_many_is_refused_whole(
    small_stub: Stub, redis: Redis, settings: ServerSettings
) -> None:
    for queue in ("a", "b", "c"):
        await small_stub.Enqueue(svc.EnqueueRequest(queue=queue))
    await small_stub.Enqueue(svc.EnqueueRequest(queue="a"))  # existing queues take jobs still
    before = await _keys(redis, settings.key_prefix)
    batch = svc.EnqueueBatchRequest(requests=[svc.EnqueueRequest(queue="a"), svc.EnqueueRequest(queue="d")])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await small_stub.EnqueueBatch(batch)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_queues" in (refused.value.details() or "")
    assert await _keys(redis, settings.key_prefix) == before
    stats = await small_stub.Stats(svc.StatsRequest(queue="a"))
    assert stats.queues[0].queued == 2


async def test_stats_pages_through_every_queue_in_name_order(stub: Stub) -> None:
    names = [f"page-{n:02d}" for n in range(7)]
    await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=[svc.EnqueueRequest(queue=q) for q in names]))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await stub.Stats(svc.StatsRequest(page_size=3, page_token=token))
        assert len(page.queues) <= 3
        seen += [q.queue for q in page.queues]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == names and pages == 3


@pytest.mark.parametrize(
    ("fields", "field"), [({"page_size": 1001}, "page_size"), ({"page_token": "%%"}, "page_token")]
)
async def test_bad_stats_paging_names_the_field(stub: Stub, fields: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Stats(svc.StatsRequest(**fields))  # type: ignore[arg-type]
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith(f"{field}:")


async def test_the_python_client_reads_every_page(app: App) -> None:
    names = [f"many-{n:04d}" for n in range(1001)]
    async with AsyncClient(f"127.0.0.1:{app.port}", batching=None) as client:
        await client.enqueue_many([{"queue": q} for q in names[:1000]])
        await client.enqueue(names[1000])
        stats = await client.stats()
    assert [s.queue for s in stats] == names
