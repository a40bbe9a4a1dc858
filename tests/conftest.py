"""Suite-wide fixtures: one real Redis/Valkey per session, a unique key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.clock import ManualClock
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, connect_redis, start_app, store_config
from jobqueue_server.store import Store
from tests.support import TestRedis, start_test_redis

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture(scope="session")
def test_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRedis]:
    server = start_test_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.close()


@pytest.fixture
def key_prefix() -> str:
    """Isolates each test's keys, so tests never see each other's jobs."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(test_redis: TestRedis) -> AsyncIterator[Redis]:
    client = connect_redis(test_redis.url, timeout_s=2.0)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(key_prefix: str, test_redis: TestRedis, tmp_path: Path) -> ServerSettings:
    return ServerSettings(
        host="127.0.0.1",
        port=0,
        redis_url=test_redis.url,
        key_prefix=key_prefix,
        data_dir=tmp_path,
        shutdown_grace_seconds=2.0,
        redis_timeout_seconds=1.0,
    )


@pytest.fixture
def store(redis: Redis, settings: ServerSettings, clock: ManualClock) -> Store:
    """A store on the real test Redis whose time is the test's ManualClock."""
    return Store(redis, store_config(settings), clock=clock)


@pytest.fixture
async def app(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    """An in-process gRPC server on a free port, on the real test Redis and Redis's clock."""
    running = await start_app(settings, Store(redis, store_config(settings)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def stub(app: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)
