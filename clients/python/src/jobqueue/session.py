"""LeaseSession: one Lease stream, from Subscribe to its end.

Jobs start as soon as they arrive: the window (max_in_flight) is the worker's concurrency,
so the server never sends a job that would have to wait. Acks, fails and extends go out
through one writer that coalesces whatever is ready into a single LeaseRequest.

When the stream ends, every job it held belongs to the server again (it releases them to
their queue at once), so a handler still running then is cancelled and its result dropped:
acking with that lease's token on a new stream would be refused with LEASE_LOST, and the job
may already be running elsewhere. Plain ``def`` handlers cannot be interrupted; their thread
runs to the end and the result is discarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TypeAlias

import grpc

from jobqueue import convert
from jobqueue.context import JobContext
from jobqueue.counters import WorkerCounters
from jobqueue.eager import Starter
from jobqueue.errors import (
    DurabilityUnavailable,
    FsyncNotConfirmed,
    InvalidArgument,
    JobQueueError,
    LeaseLost,
    ReplicationNotConfirmed,
    Unavailable,
    from_rpc_error,
    from_status,
)
from jobqueue.execution import JobRunner, Settlement
from jobqueue.keeper import LeaseKeeper
from jobqueue.logs import job_extra
from jobqueue.outbox import Ack, Outbox
from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

logger = logging.getLogger(__name__)

Call: TypeAlias = "grpc.aio.StreamStreamCall[svc.LeaseRequest, svc.LeaseResponse]"

# How long to wait for the status after a write failed, and for the server to confirm the
# last acks and end the stream after we half-closed it.
STATUS_WAIT_S = 1.0
FLUSH_TIMEOUT_S = 5.0
# An ack or fail refused with UNAVAILABLE (Redis unreachable) changed nothing and the lease
# is still ours, so it is sent again after this delay; the token fences any duplicate.
RESEND_DELAY_S = 0.5
CANCEL_WAIT_S = 1.0
_STOP_REASONS = {svc.STOP_REASON_CANCELLED: "cancelled", svc.STOP_REASON_TIMED_OUT: "timed_out"}
ACK = svc.CONFIRMATION_KIND_ACK
EXTEND = svc.CONFIRMATION_KIND_EXTEND


class LeaseSession:
    """Serves one Lease stream; `run` returns after a graceful stop and raises when it breaks."""

    def __init__(
        self,
        stub: svc_grpc.JobQueueServiceAsyncStub,
        subscribe: svc.Subscribe,
        runner: JobRunner,
        counters: WorkerCounters,
        ack_durability: job_pb2.Durability.ValueType = job_pb2.DURABILITY_UNSPECIFIED,
    ) -> None:
        self._stub = stub
        self._subscribe = subscribe
        self._runner = runner
        self._counters = counters
        self._outbox = Outbox(ack_durability)
        self._keeper = LeaseKeeper(self._outbox.put)
        self._running: dict[str, JobContext] = {}  # handlers that did not finish in their first step
        self._starter = Starter(self._execute, self._waiting)
        self._unconfirmed: dict[str, Settlement] = {}
        self._draining = False
        self._ended = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> int:
        return len(self._running)

    async def run(self, stop: asyncio.Event, force: asyncio.Event, grace_period: float) -> None:
        """Runs until `stop` is set (then drains for up to `grace_period`) or the stream breaks."""
        call = self._stub.Lease()
        self._loop = asyncio.get_running_loop()
        self._counters.connections += 1
        self._outbox.resubscribe(self._subscribe)
        reader = asyncio.create_task(self._read(call), name="jobqueue lease reader")
        writer = asyncio.create_task(self._write(call), name="jobqueue lease writer")
        keeper = asyncio.create_task(self._keeper.run(), name="jobqueue lease keeper")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, writer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done() and not reader.done():
                await asyncio.wait({reader}, timeout=STATUS_WAIT_S)  # the reader gets the status
            if stopping.done() and not reader.done():
                await self._drain(reader, force, grace_period)
            self._check(reader, writer)
        finally:
            self._ended = True
            await self._abandon_running()
            call.cancel()
            for task in (stopping, keeper, reader, writer):
                task.cancel()
            await asyncio.gather(stopping, keeper, reader, writer, return_exceptions=True)

    # -- stream I/O ------------------------------------------------------------------------

    async def _read(self, call: Call) -> None:
        loop = asyncio.get_running_loop()
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                return
            assert isinstance(response, svc.LeaseResponse)
            for stop in response.stops:
                self._stop(stop)
            if response.jobs:
                self._start(response.jobs, loop)
            for confirmation in response.confirmations:
                self._confirm(confirmation)

    async def _write(self, call: Call) -> None:
        while (request := await self._outbox.next()) is not None:
            await call.write(request)
        await call.done_writing()

    def _check(self, reader: asyncio.Task[None], writer: asyncio.Task[None]) -> None:
        """Raises the typed error that ended the stream, if it did not end by our stop."""
        for task in (reader, writer):
            error = task.exception() if task.done() and not task.cancelled() else None
            if isinstance(error, grpc.RpcError):
                raise from_rpc_error(error) from error
            if error is not None and not isinstance(error, asyncio.InvalidStateError):
                raise error  # a bug, not a network failure: let it surface
        if not self._draining:
            raise Unavailable("the server ended the Lease stream")

    # -- jobs ------------------------------------------------------------------------------

    def _start(self, jobs: Sequence[svc.LeasedJob], loop: asyncio.AbstractEventLoop) -> None:
        self._counters.received += len(jobs)
        if self._draining:
            # Not started: the server releases them to their queue when the stream closes.
            logger.debug("stopping: not starting %d jobs", len(jobs))
            return
        worker_id = self._subscribe.worker_id
        delivered = [JobContext.delivered(leased, worker_id) for leased in jobs]
        for ctx in delivered:
            ctx._report = self._report
        self._starter.start(delivered)
        self._keeper.arrived(loop.time(), delivered)

    def _report(self, update: svc.ProgressUpdate) -> None:
        """Queues a handler's progress report; from a handler's thread, through the loop."""
        if self._loop is None or self._ended:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._outbox.put(update)
        else:
            self._loop.call_soon_threadsafe(self._outbox.put, update)

    def _stop(self, stop: svc.JobStop) -> None:
        """The server ended a running job's lease (a cancel, a timeout): its handler is
        cancelled (a plain def one sees ctx.stopped) and nothing is settled for it."""
        ctx = self._running.get(stop.job_id)
        if ctx is None or ctx.lease_token != stop.lease_token:
            return  # finished meanwhile (its settlement will be refused) or never started
        ctx.stop_reason = _STOP_REASONS.get(stop.reason, "stopped")
        ctx.lease_lost = True  # the keeper stops extending it; its result is dropped
        self._counters.stopped += 1
        logger.info(
            "job %s stopped by the server: %s",
            ctx.job_id,
            ctx.stop_reason,
            extra=job_extra(ctx.job_id, ctx.queue, ctx.attempt, ctx.worker_id),
        )
        if ctx._task is not None and self._runner.cancellable(ctx):
            ctx._task.cancel()

    def _waiting(self, ctx: JobContext, task: asyncio.Task[None]) -> None:
        """`ctx`'s handler did not finish in its first step: `task` runs the rest of it."""
        ctx._task = task
        self._running[ctx.job_id] = ctx

    async def _execute(self, ctx: JobContext) -> None:
        try:
            settlement = await self._runner.run(ctx)
        except asyncio.CancelledError:
            if ctx.stopped and not self._ended:
                return  # the server stopped it: the cancellation was ours
            self._counters.abandoned += 1
            raise
        finally:
            ctx._done = True
            self._running.pop(ctx.job_id, None)  # when it was there: the handler waited
        if ctx.stopped:
            return  # stopped by the server: nothing to settle
        if self._ended or ctx.lease_lost:
            self._counters.abandoned += 1
            why = "its lease was lost" if ctx.lease_lost else "its stream ended"
            logger.warning(
                "dropping the result of job %s: %s",
                ctx.job_id,
                why,
                extra=job_extra(ctx.job_id, ctx.queue, ctx.attempt, ctx.worker_id),
            )
            return
        self._settle(settlement)

    async def _wait_for_handlers(
        self, reader: asyncio.Task[None], force: asyncio.Event, grace: float
    ) -> None:
        """Until every running handler is done, the grace period ends, a force stop, or the stream breaks."""
        tasks = self._handler_tasks()
        if not tasks:
            return
        logger.info("stopping: waiting up to %.1f s for %d running jobs", grace, len(tasks))
        handlers = asyncio.ensure_future(asyncio.wait(tasks))
        forced = asyncio.ensure_future(force.wait())
        try:
            await asyncio.wait({handlers, forced, reader}, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
        finally:
            handlers.cancel()
            forced.cancel()

    async def _drain(self, reader: asyncio.Task[None], force: asyncio.Event, grace: float) -> None:
        self._draining = True
        # A window of zero pauses delivery: each ack would otherwise make room for a job we
        # would not start (the server counts an attempt for it, then releases it at close).
        self._outbox.resubscribe(svc.Subscribe(max_in_flight=0))
        await self._wait_for_handlers(reader, force, grace)
        await self._abandon_running()
        self._outbox.close()
        # The writer flushes the last acks and half-closes; the server confirms and ends.
        forced = asyncio.ensure_future(force.wait())
        try:
            await asyncio.wait({reader, forced}, timeout=FLUSH_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()

    async def _abandon_running(self) -> None:
        tasks = self._handler_tasks()
        if not tasks:
            return
        logger.warning("abandoning %d running jobs; the server gives them out again", len(tasks))
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=CANCEL_WAIT_S)

    def _handler_tasks(self) -> list[asyncio.Task[None]]:
        """Tasks running handlers, and tasks about to start some (jobs of a delivery)."""
        running = [ctx._task for ctx in self._running.values() if ctx._task is not None]
        return running + list(self._starter.pending)

    # -- confirmations ---------------------------------------------------------------------

    def _confirm(self, confirmation: svc.Confirmation) -> None:
        kind = confirmation.kind
        if kind == EXTEND:
            self._extended(confirmation, from_status(confirmation.status))
            return
        settlement = self._unconfirmed.pop(confirmation.job_id, None)
        if not confirmation.status.code:  # OK: by far the most common, so the fast path
            if kind == ACK:
                self._counters.succeeded += 1
            else:
                self._counters.failed += 1
            return
        error = from_status(confirmation.status)
        assert error is not None
        if isinstance(error, FsyncNotConfirmed | ReplicationNotConfirmed):
            self._settled_undurably(confirmation, error)
        elif settlement is not None and isinstance(error, Unavailable):
            self._resend_later(settlement, error)
        else:
            self._refused(confirmation.job_id, settlement, error)

    def _settled_undurably(self, confirmation: svc.Confirmation, error: JobQueueError) -> None:
        # The write stands, and a resend could not change that (it would meet LEASE_LOST, or
        # DURABILITY_UNAVAILABLE once Redis stopped fsyncing). Redis did not say it reached
        # the disk in time, so it may not survive a power loss.
        logger.warning("job %s settled, but not confirmed on disk: %s", confirmation.job_id, error)
        if confirmation.kind == ACK:
            self._counters.succeeded += 1
        else:
            self._counters.failed += 1

    def _refused(self, job_id: str, settlement: Settlement | None, error: JobQueueError) -> None:
        self._counters.rejected += 1
        _log_refusal(job_id, error)
        if isinstance(settlement, tuple) and isinstance(error, InvalidArgument):
            self._fail_refused_result(settlement, error)
        elif isinstance(settlement, tuple) and isinstance(error, DurabilityUnavailable):
            self._fail_undurable_ack(settlement, error)

    def _settle(self, settlement: Settlement) -> None:
        if type(settlement) is tuple:
            self._unconfirmed[settlement[0]] = settlement
            self._outbox.ack(settlement)
        else:
            assert isinstance(settlement, svc.FailRequest)
            self._unconfirmed[settlement.job_id] = settlement
            self._outbox.put(settlement)

    def _resend_later(self, settlement: Settlement, error: JobQueueError) -> None:
        job_id = _job_id(settlement)
        logger.warning("server could not settle job %s (%s); sending again", job_id, error)
        self._unconfirmed[job_id] = settlement
        self._counters.resent += 1
        asyncio.get_running_loop().call_later(RESEND_DELAY_S, self._resend, job_id)

    def _resend(self, job_id: str) -> None:
        settlement = self._unconfirmed.pop(job_id, None)
        if settlement is not None and not self._ended and not self._outbox.closed:
            self._settle(settlement)

    def _fail_refused_result(self, ack: Ack, error: JobQueueError) -> None:
        # The same ack cannot succeed (a result over the size limit, ...), and left alone the
        # lease would run out and the job run again: fail it for good, with the reason.
        message = f"the server refused the handler's result: {error}"
        self._settle(svc.FailRequest(job_id=ack[0], lease_token=ack[1], error=message, non_retryable=True))

    def _fail_undurable_ack(self, ack: Ack, error: JobQueueError) -> None:
        # Nothing was written and the job is still ours: held, it would run again only after its
        # lease ran out. Fail it now (retryably, with the reason) rather than acknowledge it at a
        # weaker level than the worker was configured for.
        message = f"the server could not make the ack durable: {error}"
        self._settle(svc.FailRequest(job_id=ack[0], lease_token=ack[1], error=message))

    def _extended(self, confirmation: svc.Confirmation, error: JobQueueError | None) -> None:
        ctx = self._running.get(confirmation.job_id)
        if ctx is None:
            return  # the handler finished meanwhile
        if error is None:
            ctx.deadline = convert.from_timestamp(confirmation.lease_expire_time)
        elif isinstance(error, Unavailable):
            logger.warning("could not extend the lease of job %s: %s", confirmation.job_id, error)
        else:
            ctx.lease_lost = True  # the keeper stops extending it
            logger.warning(
                "lease of job %s lost (%s); its result will be dropped", confirmation.job_id, error
            )


def _log_refusal(job_id: str, error: JobQueueError) -> None:
    if isinstance(error, LeaseLost):
        logger.warning(
            "server refused to settle job %s: lease lost (%s)", job_id, error, extra=job_extra(job_id)
        )
    else:
        logger.error(
            "server refused to settle job %s: %s %s", job_id, error.reason, error, extra=job_extra(job_id)
        )


def _job_id(settlement: Settlement) -> str:
    return settlement[0] if isinstance(settlement, tuple) else settlement.job_id
