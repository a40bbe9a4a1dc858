"""Worker against the in-process server: handlers, results, failures, routing, leases."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from jobqueue import (
    AsyncClient,
    BackoffPolicy,
    InvalidArgument,
    JobContext,
    JobState,
    NonRetryableError,
    ReconnectBackoff,
    RetryAfter,
    Worker,
)
from tests.client.conftest import WorkerRunner, eventually

FAST_RETRY = BackoffPolicy(initial_delay=0.01, no_jitter=True)


async def _state_is(client: AsyncClient, job_id: str, state: JobState) -> bool:
    return (await client.get(job_id)).state == state


async def test_handler_results_are_visible_through_get(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(concurrency=4)
    seen: list[JobContext] = []

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        seen.append(ctx)
        return {"sum": sum(payload["numbers"]), "attempt": ctx.attempt}

    workers.start(worker)
    result = await client.enqueue(queue, {"numbers": [1, 2, 3]}, metadata={"trace": "abc"})
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.result, job.attempts) == (JobState.COMPLETED, {"sum": 6, "attempt": 1}, 1)
    (ctx,) = seen
    assert (ctx.job_id, ctx.queue, ctx.max_attempts, ctx.metadata) == (
        result.job_id,
        queue,
        3,
        {"trace": "abc"},
    )
    assert ctx.lease_token and ctx.deadline.tzinfo is UTC and ctx.worker_id == worker.worker_id
    await eventually(lambda: worker.counters.succeeded == 1)
    assert worker.counters.processed == 1 and worker.counters.failed == 0


async def test_a_plain_def_handler_runs_in_a_thread(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()
    loop_thread = threading.get_ident()

    @worker.handler(queue)
    def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"in_loop_thread": threading.get_ident() == loop_thread, "bytes": len(ctx.payload_bytes)}

    workers.start(worker)
    result = await client.enqueue(queue, b"12345")
    job = await client.wait(result.job_id, timeout=10)

    assert job.result == {"in_loop_thread": False, "bytes": 5}


async def test_an_exception_is_retried_then_the_job_is_dead_with_its_error_history(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        raise ValueError(f"boom on attempt {ctx.attempt}")

    workers.start(worker)
    result = await client.enqueue(queue, {"x": 1}, max_attempts=2, backoff=FAST_RETRY)
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.attempts) == (JobState.DEAD, 2)
    assert [e.attempt for e in job.errors] == [1, 2]
    assert job.errors[0].message.startswith("ValueError: boom on attempt 1\n")
    assert "Traceback" in job.errors[0].message and "in handle" in job.errors[0].message
    assert job.last_error.startswith("ValueError: boom on attempt 2")
    await eventually(lambda: worker.counters.failed == 2)


async def test_non_retryable_error_makes_the_job_dead_after_one_attempt(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        raise NonRetryableError("bad payload: no address")

    workers.start(worker)
    result = await client.enqueue(queue, max_attempts=5, backoff=FAST_RETRY)
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.attempts, len(job.errors)) == (JobState.DEAD, 1, 1)
    assert job.last_error.startswith("NonRetryableError: bad payload: no address")


async def test_retry_after_fails_the_attempt_and_the_next_one_runs(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if ctx.attempt == 1:
            raise RetryAfter("rate limited", delay=0.05)
        return {"attempt": ctx.attempt}

    workers.start(worker)
    result = await client.enqueue(queue)
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.result) == (JobState.COMPLETED, {"attempt": 2})
    assert job.errors[0].message.startswith("RetryAfter: rate limited")


async def test_a_result_that_is_not_a_dict_fails_the_job_for_good(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> Any:
        return [1, 2, 3]

    workers.start(worker)
    result = await client.enqueue(queue, max_attempts=3)
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.attempts) == (JobState.DEAD, 1)
    assert job.last_error == "handler must return a dict or None, not list"


async def test_jobs_are_routed_by_payload_type_then_to_the_queue_handler(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()

    @worker.handler(queue, job_type="welcome")
    async def welcome(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"by": "welcome"}

    @worker.handler(queue)
    async def other(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"by": "queue"}

    workers.start(worker)
    typed = await client.enqueue(queue, {"type": "welcome"})
    untyped = await client.enqueue(queue, {"to": "x"})
    unknown = await client.enqueue(queue, {"type": "reset"})

    results = [(await client.wait(r.job_id, timeout=10)).result for r in (typed, untyped, unknown)]

    assert results == [{"by": "welcome"}, {"by": "queue"}, {"by": "queue"}]


async def test_a_job_with_no_handler_fails_with_a_clear_message(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()
    worker.add_handler(queue, lambda payload, ctx: None, job_type="known")
    workers.start(worker)

    result = await client.enqueue(queue, {"type": "unknown"}, max_attempts=1)
    job = await client.wait(result.job_id, timeout=10)

    assert job.state == JobState.DEAD
    assert job.last_error == f"no handler for jobs of type 'unknown' on queue {queue!r} in this worker"


async def test_the_lease_is_extended_while_a_long_handler_runs(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()
    started = asyncio.Event()
    release = asyncio.Event()
    contexts: list[JobContext] = []

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        contexts.append(ctx)
        started.set()
        await release.wait()
        return {"lost": ctx.lease_lost}

    workers.start(worker)
    result = await client.enqueue(queue, lease_duration=1.0)
    await asyncio.wait_for(started.wait(), 10)
    (ctx,) = contexts
    deadlines = [ctx.deadline]

    def extended_past_the_first_deadline() -> bool:
        if ctx.deadline != deadlines[-1]:
            deadlines.append(ctx.deadline)
        return len(deadlines) >= 3 and datetime.now(UTC) > deadlines[0]

    await eventually(extended_past_the_first_deadline)
    assert (await client.get(result.job_id)).state == JobState.ACTIVE
    release.set()
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.attempts, job.errors, job.result) == (JobState.COMPLETED, 1, [], {"lost": False})
    assert deadlines == sorted(deadlines)
    assert worker.counters.rejected == 0


async def test_no_more_handlers_run_at_once_than_the_concurrency(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(concurrency=3)
    gate = asyncio.Event()
    running = 0
    most = 0

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await gate.wait()
        finally:
            running -= 1

    results = await client.enqueue_many([{"queue": queue, "payload": {"i": i}} for i in range(10)])
    workers.start(worker)
    await eventually(lambda: running == 3)
    (stats,) = await client.stats(queue)
    assert (stats.active, stats.queued, worker.running) == (3, 7, 3)

    gate.set()
    for result in results:
        assert (await client.wait(result.job_id, timeout=10)).state == JobState.COMPLETED

    assert most == 3


async def test_stop_lets_the_running_job_finish_and_takes_no_new_ones(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(grace_period=10)
    started = asyncio.Event()
    release = asyncio.Event()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"done": True}

    run = workers.start(worker)
    first = await client.enqueue(queue)
    await asyncio.wait_for(started.wait(), 10)

    worker.stop()
    second = await client.enqueue(queue)
    release.set()
    await asyncio.wait_for(run, 10)

    assert (await client.get(first.job_id)).state == JobState.COMPLETED
    assert (await client.get(second.job_id)).state == JobState.QUEUED
    assert (worker.counters.succeeded, worker.counters.abandoned) == (1, 0)


async def test_a_job_still_running_after_the_grace_period_is_abandoned_and_released(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(grace_period=0.1)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    run = workers.start(worker)
    result = await client.enqueue(queue)
    await asyncio.wait_for(started.wait(), 10)

    worker.stop()
    await asyncio.wait_for(run, 10)

    assert cancelled.is_set() and worker.counters.abandoned == 1
    job = await client.get(result.job_id)
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)


async def test_stop_now_abandons_running_jobs_at_once(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(grace_period=60)
    started = asyncio.Event()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    run = workers.start(worker)
    result = await client.enqueue(queue)
    await asyncio.wait_for(started.wait(), 10)

    worker.stop(now=True)
    await asyncio.wait_for(run, 10)

    assert worker.counters.abandoned == 1
    # A stop at once does not wait for the server, which releases the job when it sees the
    # stream cancelled.
    await eventually(lambda: _state_is(client, result.job_id, JobState.QUEUED))


async def test_the_worker_keeps_reconnecting_to_an_unreachable_server_until_stopped(
    workers: WorkerRunner,
) -> None:
    worker = Worker("127.0.0.1:1", ["emails"], reconnect=ReconnectBackoff(base=0.01, cap=0.02))
    worker.add_handler("emails", lambda payload, ctx: None)
    run = asyncio.create_task(worker.run())

    await eventually(lambda: worker.counters.connections >= 3)
    worker.stop()
    await asyncio.wait_for(run, 10)

    assert worker.counters.received == 0


async def test_bad_queue_names_fail_before_connecting() -> None:
    worker = Worker("127.0.0.1:1", ["emails", "no spaces!"], handlers={"emails": lambda payload, ctx: None})

    with pytest.raises(InvalidArgument) as caught:
        await worker.run()

    assert caught.value.field == "queues[1]"


async def test_sigterm_drains_and_a_second_one_abandons(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(concurrency=2, grace_period=30)
    started = asyncio.Event()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    run = asyncio.create_task(worker.run(install_signal_handlers=True))
    result = await client.enqueue(queue)
    await asyncio.wait_for(started.wait(), 10)

    os.kill(os.getpid(), signal.SIGTERM)
    await eventually(lambda: worker.stopping)
    assert not run.done()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(run, 10)

    assert worker.counters.abandoned == 1
    await eventually(lambda: _state_is(client, result.job_id, JobState.QUEUED))


async def test_a_result_the_server_refuses_fails_the_job_for_good(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new()

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"blob": "x" * (1024 * 1024 + 1)}  # over the server's 1 MiB result limit

    workers.start(worker)
    result = await client.enqueue(queue, max_attempts=3)
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.attempts) == (JobState.DEAD, 1)
    assert job.last_error.startswith("the server refused the handler's result: ")
    assert "result" in job.last_error
    await eventually(lambda: (worker.counters.rejected, worker.counters.failed) == (1, 1))


async def test_a_handler_that_times_out_its_own_work_fails_only_its_job(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    # asyncio.timeout cancels the task it was entered in: that must be the job's own, even
    # when the handler runs its first step at once (eager tasks on Python 3.12+).
    worker = workers.new(concurrency=2)

    @worker.handler(queue)
    async def handle(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if payload["stuck"]:
            async with asyncio.timeout(0.05):
                await asyncio.Event().wait()
        return {"task": asyncio.current_task() is not None}

    workers.start(worker)
    stuck = await client.enqueue(queue, {"stuck": True}, max_attempts=1)
    dead = await client.wait(stuck.job_id, timeout=10)
    fine = await client.wait((await client.enqueue(queue, {"stuck": False})).job_id, timeout=10)

    assert (dead.state, dead.last_error.splitlines()[0]) == (JobState.DEAD, "TimeoutError: ")
    assert (fine.state, fine.result) == (JobState.COMPLETED, {"task": True})
    assert worker.counters.connections == 1 and worker.counters.abandoned == 0
