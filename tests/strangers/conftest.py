"""Fixtures of the stranger tests: a producer on the test's server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobqueue import AsyncClient
from jobqueue_server.runtime.app import App


@pytest.fixture
async def client(app: App) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{app.port}") as producer:
        yield producer


@pytest.fixture
def target(app: App) -> str:
    return f"127.0.0.1:{app.port}"
