"""Runs one job's handler and turns what it did into the ack or fail to send."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import Executor
from types import CoroutineType

from jobqueue import convert, tracing
from jobqueue.context import JobContext
from jobqueue.errors import InvalidArgument, NonRetryableError, RetryAfter
from jobqueue.handlers import TYPE_KEY, HandlerRegistry, Registered
from jobqueue.logs import job_fields
from jobqueue.outbox import Ack
from jobqueue.v1 import job_queue_service_pb2 as svc

logger = logging.getLogger(__name__)

# A failure report keeps the end of the traceback (where the error is) and stays under
# the server's default 4 KiB error limit, which cuts from the end.
TRACEBACK_LINES = 20
MAX_ERROR_CHARS = 3500

#: What a handler's run comes to: an ack (see outbox.Ack) or a fail.
Settlement = Ack | svc.FailRequest


class JobRunner:
    """Calls handlers: ``async def`` on the loop, plain ``def`` in `executor`'s threads."""

    def __init__(self, registry: HandlerRegistry, executor: Executor, tracer: tracing.Tracer) -> None:
        self._registry = registry
        self._executor = executor
        self._tracer = tracer

    async def run(self, ctx: JobContext) -> Settlement:
        """The handler's outcome as an Ack or a FailRequest, with how long it ran.
        Cancellation propagates."""
        began = time.perf_counter_ns()
        # Every line logged while the handler runs carries its job (logs.py).
        fields = job_fields.set(
            {"job_id": ctx.job_id, "queue": ctx.queue, "attempt": ctx.attempt, "worker_id": ctx.worker_id}
        )
        try:
            # A `process <queue>` span, current while the handler runs (tracing.py).
            with tracing.process_span(self._tracer, ctx) as span:
                settlement = await self._outcome(ctx)
                if isinstance(settlement, svc.FailRequest):
                    tracing.mark_failed(span, settlement.error)
        finally:
            job_fields.reset(fields)
        ran_ns = time.perf_counter_ns() - began
        if type(settlement) is tuple:
            return (settlement[0], settlement[1], settlement[2], ran_ns)
        assert isinstance(settlement, svc.FailRequest)
        settlement.handler_duration.FromNanoseconds(ran_ns)
        return settlement

    async def _outcome(self, ctx: JobContext) -> Settlement:
        registered = self._registry.resolve(ctx.queue, ctx.payload)
        if registered is None:
            # Retryable: during a rolling deploy, a newer worker may know this job type.
            job_type = ctx.payload.get(TYPE_KEY)
            kind = f" of type {job_type!r}" if isinstance(job_type, str) else ""
            return fail(ctx, f"no handler for jobs{kind} on queue {ctx.queue!r} in this worker")
        try:
            result: object
            if registered.is_async:
                outcome = registered.handler(ctx.payload, ctx)
                # The exact type first: inspect.isawaitable costs more than a no-op handler.
                awaitable = type(outcome) is CoroutineType or inspect.isawaitable(outcome)
                result = await outcome if awaitable else outcome  # type: ignore[misc]
            else:
                result = await self._in_thread(registered, ctx)
        except NonRetryableError as error:
            logger.warning("job %s failed for good: %s", ctx.job_id, error)
            return fail(ctx, describe(error), non_retryable=True)
        except RetryAfter as error:
            logger.info("job %s asked to retry in %s: %s", ctx.job_id, error.delay, error)
            return fail(ctx, describe(error), retry_delay=error.delay.total_seconds())
        except Exception as error:
            logger.warning(
                "job %s failed (attempt %d of %d)", ctx.job_id, ctx.attempt, ctx.max_attempts, exc_info=error
            )
            return fail(ctx, describe(error))
        return ack(ctx, result)

    def cancellable(self, ctx: JobContext) -> bool:
        """Whether `ctx`'s handler can be interrupted: an ``async def`` one (a thread cannot)."""
        registered = self._registry.resolve(ctx.queue, ctx.payload)
        return registered is not None and registered.is_async

    def _in_thread(self, registered: Registered, ctx: JobContext) -> asyncio.Future[object]:
        # Our own executor, sized to the worker's concurrency: the loop's default one has
        # min(32, cpus + 4) threads and would cap concurrency on small machines. The context
        # is copied as asyncio.to_thread does.
        call = functools.partial(contextvars.copy_context().run, registered.handler, ctx.payload, ctx)
        return asyncio.get_running_loop().run_in_executor(self._executor, call)


def ack(ctx: JobContext, result: object) -> Settlement:
    """An Ack carrying `result`, or a non-retryable fail when it is not a JSON object."""
    if result is None:
        return (ctx.job_id, ctx.lease_token, None, -1)
    if not isinstance(result, Mapping):
        message = f"handler must return a dict or None, not {type(result).__name__}"
        return fail(ctx, message, non_retryable=True)
    try:
        return (ctx.job_id, ctx.lease_token, convert.to_struct(result, "result"), -1)
    except InvalidArgument as error:
        return fail(ctx, f"handler returned a result that is not JSON: {error}", non_retryable=True)


def fail(
    ctx: JobContext, message: str, *, non_retryable: bool = False, retry_delay: float | None = None
) -> Settlement:
    request = svc.FailRequest(
        job_id=ctx.job_id, lease_token=ctx.lease_token, error=message, non_retryable=non_retryable
    )
    if retry_delay is not None:
        request.retry_delay.CopyFrom(convert.to_duration(max(0.0, retry_delay), "retry_delay"))
    return request


def describe(error: BaseException) -> str:
    """The error's type and message, then the last lines of its traceback."""
    summary = f"{type(error).__name__}: {error}"
    lines = "".join(traceback.format_exception(error)).splitlines()
    tail = "\n".join(lines[-TRACEBACK_LINES:])
    budget = MAX_ERROR_CHARS - len(summary) - 1
    if budget <= 0:
        return summary[:MAX_ERROR_CHARS]
    return f"{summary}\n{tail[-budget:]}"
