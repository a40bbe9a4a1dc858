"""Fixtures for service tests: a second server on the same Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture
async def second_app(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    running = await start_app(settings, Store(redis, store_config(settings)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def second_stub(second_app: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{second_app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)
