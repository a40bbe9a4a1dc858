"""Fixtures for service tests: a second server on the same Redis, the suite's Redis stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests.support import TestRedis

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture
def stopped_redis(test_redis: TestRedis) -> Iterator[TestRedis]:
    """Stops the suite's Redis for the test; always starts it again after."""
    if not test_redis.controllable:
        pytest.skip("the suite targets an external Redis it cannot stop")
    test_redis.stop()
    yield test_redis
    if test_redis.process is not None and not test_redis.process.running:
        test_redis.start()


@pytest.fixture
async def second_app(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    running = await start_app(settings, Store(redis, store_config(settings)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def second_stub(second_app: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second_app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


@pytest.fixture
async def metered(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    """A server with its metrics endpoint on a free port, per-queue gauges read every 0.1 s."""
    chosen = settings.model_copy(update={"metrics_port": 0, "metrics_interval_seconds": 0.1})
    running = await start_app(chosen, Store(redis, store_config(chosen)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def metered_stub(metered: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)
