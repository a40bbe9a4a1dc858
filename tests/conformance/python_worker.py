"""The conformance worker for the Python client (see README.md beside this file)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from jobqueue import JobContext, NonRetryableError, Worker
from tests.conformance import span_file

POLL_S = 0.01


def say(line: str) -> None:
    print(line, flush=True)


Action = Callable[[dict[str, Any], JobContext, str], Awaitable[dict[str, Any] | None]]


async def ack(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    return payload.get("result")


async def echo(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    return {
        "job_id": ctx.job_id,
        "queue": ctx.queue,
        "attempt": ctx.attempt,
        "max_attempts": ctx.max_attempts,
        "payload": payload,
        "metadata": ctx.metadata,
        "worker_id": worker_id,
    }


async def fail(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    raise RuntimeError(payload["error"])


async def fail_permanent(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    raise NonRetryableError(payload["error"])


async def fail_until(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    if ctx.attempt < payload["attempt"]:
        raise RuntimeError(payload["error"])
    return payload.get("result")


async def sleep(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    await asyncio.sleep(payload["ms"] / 1000)
    return payload.get("result")


async def wait_file(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    while not await asyncio.to_thread(Path(payload["path"]).exists):
        await asyncio.sleep(POLL_S)
    return payload.get("result")


async def wait_stop(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    try:
        await asyncio.sleep(3600)  # until the runtime cancels it
    except asyncio.CancelledError:
        say(f"STOPPED {ctx.job_id} {ctx.stop_reason}")
        raise
    return None


async def progress(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    ctx.progress(payload["percent"], payload["message"])
    for line in payload["lines"]:
        ctx.log(line)
    return await wait_file(payload, ctx, worker_id)


async def crash(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    os._exit(3)  # a crash: nothing is settled


ACTIONS: dict[str, Action] = {
    "ack": ack,
    "echo": echo,
    "fail": fail,
    "fail_permanent": fail_permanent,
    "fail_until": fail_until,
    "sleep": sleep,
    "wait_file": wait_file,
    "wait_stop": wait_stop,
    "progress": progress,
    "exit": crash,
}


async def run_action(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    action = ACTIONS.get(str(payload.get("action")))
    if action is None:
        raise NonRetryableError("unknown action")
    return await action(payload, ctx, worker_id)


async def main() -> None:
    worker_id = os.environ.get("JOBQ_WORKER_ID", "python-conformance")
    trace_file = os.environ.get(span_file.TRACE_FILE_ENV)
    # Spans recorded in memory and written out at exit, for the kit's tracing test.
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    worker = Worker(
        os.environ["JOBQ_TARGET"],
        concurrency=int(os.environ.get("JOBQ_CONCURRENCY", "1")),
        worker_id=worker_id,
        grace_period=float(os.environ.get("JOBQ_GRACE_SECONDS", "10")),
        tracer_provider=provider if trace_file else None,
    )

    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any] | None:
        say(f"START {ctx.job_id}")
        try:
            return await run_action(payload, ctx, worker_id)
        finally:
            say(f"END {ctx.job_id}")

    for queue in os.environ["JOBQ_QUEUES"].split(","):
        worker.add_handler(queue, handle)
    running = asyncio.create_task(worker.run(install_signal_handlers=True))
    while worker.counters.connections < 1 and not running.done():
        await asyncio.sleep(POLL_S)
    say("READY")
    await running
    if trace_file:
        span_file.write(Path(trace_file), spans.get_finished_spans())


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
