"""Fixtures of the conformance kit: a worker command per language, a worker factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import pytest

from jobqueue import AsyncClient
from jobqueue_server.runtime.app import App
from tests.conformance.process import WorkerProcess
from tests.conformance.workers import ROOT, WORKERS, WorkerUnavailable, must_run_all


@pytest.fixture(scope="session", params=sorted(WORKERS))
def worker_command(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command that starts the conformance worker of one language (built once)."""
    try:
        return WORKERS[request.param](tmp_path_factory.mktemp(f"build-{request.param}"))
    except WorkerUnavailable as missing:
        if must_run_all():
            raise
        pytest.skip(f"{request.param} worker unavailable: {missing}")


@pytest.fixture
def language(request: pytest.FixtureRequest, worker_command: list[str]) -> str:
    """The language of the worker under test (the `worker_command` parameter)."""
    return str(request.node.callspec.params["worker_command"])


@pytest.fixture
async def client(app: App) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(f"127.0.0.1:{app.port}") as producer:
        yield producer


Spawn = Callable[..., Awaitable[WorkerProcess]]


@pytest.fixture
def spawn(app: App, worker_command: list[str]) -> Iterator[Spawn]:
    """Starts conformance workers on the test's server; stops them all at the end."""
    started: list[WorkerProcess] = []

    async def start(
        queue: str = "conformance",
        *,
        concurrency: int = 1,
        name: str = "w1",
        grace_s: float = 10.0,
        wait_ready: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> WorkerProcess:
        worker = WorkerProcess(
            worker_command,
            target=f"127.0.0.1:{app.port}",
            queue=queue,
            concurrency=concurrency,
            worker_id=name,
            grace_s=grace_s,
            cwd=ROOT,
            extra_env=env,
        )
        started.append(worker)
        if wait_ready:
            await worker.line("READY")
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A file whose creation releases `wait_file` jobs."""
    return tmp_path / "gate"
