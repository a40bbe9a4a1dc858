"""Fixtures for the client tests: both producer clients and a running-worker helper on the
in-process server, plus `eventually`, which polls a condition instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from jobqueue import AsyncClient, Client, ReconnectBackoff, Worker
from jobqueue_server.runtime.app import App

WAIT_S = 10.0


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], within: float = WAIT_S, interval: float = 0.01
) -> None:
    """Polls `condition` (sync or async) until it is true; fails the test after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        outcome = condition()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


async def stop_app(app: App, tries: int = 10) -> None:
    """app.stop(), re-cancelling background tasks that swallowed their first cancellation.

    redis-py's asyncio execute_command sometimes returns normally after its task was
    cancelled; the server's Maintenance loop then never ends and App.stop() hangs in its
    gather (reported to the lead). Cancelling again gets it out.
    """
    stopping = asyncio.ensure_future(app.stop(grace_s=0))
    for _ in range(tries):
        done, _ = await asyncio.wait({stopping}, timeout=1.0)
        if done:
            return stopping.result()
        for task in app.tasks:
            task.cancel()
    raise AssertionError("the server did not stop")


@pytest.fixture
async def server(app: App) -> AsyncIterator[App]:
    """The suite's `app`, stopped robustly before its own teardown (which then finds it stopped)."""
    yield app
    await stop_app(app)


@pytest.fixture
def target(server: App) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def queue() -> str:
    """A queue name of the test's own (keys are per-test anyway; this keeps logs readable)."""
    return f"q-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def client(target: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(target) as producer:
        yield producer


@pytest.fixture
def sync_client(target: str) -> Iterator[Client]:
    """Blocking client: call it through asyncio.to_thread, since the server shares our loop."""
    with Client(target) as producer:
        yield producer


class WorkerRunner:
    """Starts workers as tasks and stops every one at the end of the test."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._running: list[tuple[Worker, asyncio.Task[None]]] = []

    def new(self, queues: list[str] | None = None, **options: Any) -> Worker:
        options.setdefault("grace_period", 5.0)
        options.setdefault("reconnect", ReconnectBackoff(base=0.05, cap=0.5))
        return Worker(self.target, queues, **options)

    def start(self, worker: Worker) -> asyncio.Task[None]:
        task = asyncio.create_task(worker.run())
        self._running.append((worker, task))
        return task

    async def stop_all(self) -> None:
        for worker, task in self._running:
            worker.stop(now=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, WAIT_S)


@pytest.fixture
async def workers(target: str) -> AsyncIterator[WorkerRunner]:
    runner = WorkerRunner(target)
    yield runner
    await runner.stop_all()
