"""The conformance worker for the Python client (see README.md beside this file)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from jobqueue import JobContext, NonRetryableError, Worker

POLL_S = 0.01


def say(line: str) -> None:
    print(line, flush=True)


async def run_action(payload: dict[str, Any], ctx: JobContext, worker_id: str) -> dict[str, Any] | None:
    action = payload.get("action")
    result: dict[str, Any] | None = payload.get("result")
    if action == "ack":
        return result
    if action == "echo":
        return {
            "job_id": ctx.job_id,
            "queue": ctx.queue,
            "attempt": ctx.attempt,
            "max_attempts": ctx.max_attempts,
            "payload": payload,
            "metadata": ctx.metadata,
            "worker_id": worker_id,
        }
    if action == "fail":
        raise RuntimeError(payload["error"])
    if action == "fail_permanent":
        raise NonRetryableError(payload["error"])
    if action == "fail_until":
        if ctx.attempt < payload["attempt"]:
            raise RuntimeError(payload["error"])
        return result
    if action == "sleep":
        await asyncio.sleep(payload["ms"] / 1000)
        return result
    if action == "wait_file":
        while not Path(payload["path"]).exists():
            await asyncio.sleep(POLL_S)
        return result
    if action == "exit":
        os._exit(3)  # a crash: nothing is settled
    raise NonRetryableError("unknown action")


async def main() -> None:
    worker_id = os.environ.get("JOBQ_WORKER_ID", "python-conformance")
    worker = Worker(
        os.environ["JOBQ_TARGET"],
        concurrency=int(os.environ.get("JOBQ_CONCURRENCY", "1")),
        worker_id=worker_id,
        grace_period=float(os.environ.get("JOBQ_GRACE_SECONDS", "10")),
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


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
