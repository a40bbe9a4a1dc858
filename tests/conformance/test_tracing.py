"""One trace across languages: a Python producer's `send` span, the server's span for its call
and a conformance worker's `process` span (Python, Go or TypeScript) join up.

The producer and the server record into this process's memory; the worker, another process,
records into its own and writes its spans to JOBQ_TRACE_FILE when it exits (span_file.py).
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from jobqueue import AsyncClient
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests.conformance import span_file
from tests.conformance.conftest import Spawn
from tests.tracing import Recorded, recording

# The Java worker is an example of the raw contract, without the client libraries' tracing.
TRACED_LANGUAGES = {"python", "go", "node"}


@pytest.fixture
def recorded() -> Recorded:
    return recording()


@pytest.fixture
async def app(redis: Redis, settings: ServerSettings, recorded: Recorded) -> AsyncIterator[App]:
    running = await start_app(settings, Store(redis, store_config(settings)), recorded.provider)
    yield running
    await running.stop(grace_s=0)


def hex_ids(span: object) -> tuple[str, str]:
    context = span.get_span_context()  # type: ignore[attr-defined]
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


async def test_producer_server_and_worker_spans_join_up(
    app: App, spawn: Spawn, language: str, recorded: Recorded, tmp_path: Path
) -> None:
    if language not in TRACED_LANGUAGES:
        pytest.skip(f"the {language} worker does not trace")
    trace_file = tmp_path / "worker-spans.jsonl"
    worker = await spawn("traced", name="traced-worker", env={span_file.TRACE_FILE_ENV: str(trace_file)})
    async with AsyncClient(
        f"127.0.0.1:{app.port}", batching=None, tracer_provider=recorded.provider
    ) as producer:
        job_id = (await producer.enqueue("traced", {"action": "ack", "result": {}})).job_id
        assert (await producer.wait(job_id)).state == "completed"
    worker.signal(signal.SIGTERM)
    assert await worker.exit_code() == 0

    [send] = recorded.named("send traced")
    trace_id, send_id = hex_ids(send)
    [served] = recorded.named("jobqueue.v1.JobQueueService/Enqueue")
    assert hex_ids(served)[0] == trace_id
    assert served.parent is not None and format(served.parent.span_id, "016x") == send_id

    [process] = [s for s in span_file.read(trace_file) if s.name == "process traced"]
    assert process.kind == "CONSUMER"
    assert process.trace_id == trace_id
    assert process.parent_span_id == send_id
    assert process.links == [{"trace_id": trace_id, "span_id": send_id}]
    assert process.attributes["messaging.system"] == "jobqueue"
    assert process.attributes["messaging.destination.name"] == "traced"
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["messaging.message.id"] == job_id
    assert process.attributes["jobqueue.job.attempt"] == 1
    assert process.attributes["jobqueue.worker.id"] == "traced-worker"
    assert process.status != "ERROR"
