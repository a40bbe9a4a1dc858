"""Fixtures for authentication tests: a server run with --auth on the test Redis, and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


@pytest.fixture
def auth_settings(settings: ServerSettings) -> ServerSettings:
    return settings.model_copy(update={"auth": True})


@pytest.fixture
async def auth_app(redis: Redis, auth_settings: ServerSettings) -> AsyncIterator[App]:
    running = await start_app(auth_settings, Store(redis, store_config(auth_settings)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
def admin_token(auth_app: App, auth_settings: ServerSettings) -> str:
    """The bootstrap admin token the server wrote at start."""
    return (auth_settings.data_dir / "admin.token").read_text().strip()


@pytest.fixture
async def channel(auth_app: App) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{auth_app.port}") as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return svc_grpc.JobQueueServiceStub(channel)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def make_token(stub: Stub, admin_token: str) -> Callable[..., object]:
    """Creates a token through CreateToken with the admin token; returns the bearer text."""

    async def make(role: int, queues: list[str], **fields: object) -> str:
        request = svc.CreateTokenRequest(name="test", role=role, queues=queues, **fields)  # type: ignore[arg-type]
        response = await stub.CreateToken(request, metadata=bearer(admin_token))
        return response.token

    return make


def file_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
