"""One Lease stream: credit-based delivery, settlement on the stream, release at the end.

The session never holds more than `max_in_flight` unsettled jobs. An idle session waits
for a queue signal (or the safety sweep timeout), never polling Redis in a loop. When the
stream ends, every job it still holds goes back to its queue at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from jobqueue.logs import job_extra
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1.job_queue_service_pb2 import ConfirmationKind, StopReason
from jobqueue_server.api import framing, job_wire, validation, wire
from jobqueue_server.api.status import OK, rpc_status_of
from jobqueue_server.errors import (
    DurabilityUnavailable,
    FieldViolation,
    FsyncNotConfirmed,
    JobNotFound,
    JobQueueError,
    LeaseLost,
    ReplicationNotConfirmed,
    ServerDraining,
    StoreUnavailable,
)
from jobqueue_server.observability.metrics import NO_METRICS, JobMetrics
from jobqueue_server.store import ExtendOutcome, FailOutcome, JobState, Lease, Progress, Settle, Store
from jobqueue_server.store.signals import QueueSignals

logger = logging.getLogger(__name__)

# The stream writes serialized LeaseResponses: jobs are spliced from their stored bytes.
Send = Callable[[bytes], Awaitable[None]]

# Most jobs one lease call takes. A wide window is filled in several calls, each sent as it
# comes, so the worker starts on the first jobs while the server leases the next ones.
LEASE_CHUNK = 64
# Confirmations made but not yet written. Past it the session reads no further request until
# the worker reads its answers: a worker that sends and never reads is held by flow control
# instead of growing the server's memory.
MAX_UNSENT_CONFIRMATIONS = 4096
# Confirmations with no job to go with wait this long for one (fewer than LEASE_CHUNK of them).
# A worker fed below its window's rate gets each job alone: writing each ack's confirmation
# alone as well cost the server a second gRPC write per job (most of a job's CPU at that rate)
# and held the next job behind that write (docs/performance.md).
CONFIRMATION_LINGER_S = 0.002
# Progress updates taken from one message; the rest are dropped (a worker sends a few per job).
MAX_PROGRESS_PER_MESSAGE = 1000


def _settled(job_id: str, kind: ConfirmationKind.ValueType) -> bytes:
    """A Confirmation with an OK status, serialized: job_id, an empty status, the kind."""
    encoded = job_id.encode()
    return wire.len_field(1, encoded) + _OK_STATUS + _KINDS[kind]


# Confirmation.status (field 2) holding an OK google.rpc.Status, which serializes to nothing.
_OK_STATUS = wire.len_field(2, b"")
# Confirmation.kind (field 3) for each kind.
_KINDS = {kind: wire.varint_field(3, kind) for kind in ConfirmationKind.values()}


class LeaseSession:
    """Serves one Lease stream after its first message was validated."""

    def __init__(
        self,
        store: Store,
        signals: QueueSignals,
        limits: validation.Limits,
        subscription: validation.Subscription,
        sweep_interval_s: float,
        on_deadline: Callable[[int, str], None],
        on_change: Callable[[Iterable[str]], None] = lambda job_ids: None,
        metrics: JobMetrics = NO_METRICS,
    ) -> None:
        """`on_deadline(ms, queue)` plans a maintenance pass; `on_change(job_ids)` says which
        jobs this stream changed (leased, settled, reported on), for their watchers."""
        self._store = store
        self._signals = signals
        self._limits = limits
        self._sub = subscription
        self._turn = 0  # rotates the partitions leased from first (_stored_queues)
        self._window = subscription.max_in_flight
        self._sweep_interval_s = sweep_interval_s
        self._on_deadline = on_deadline
        self._on_change = on_change
        self._metrics = metrics
        self._held: dict[str, str] = {}  # job id -> lease token
        # Jobs and confirmations waiting to be written. Two tasks produce them (the dispatcher,
        # the reader); gRPC allows one write in progress per call, so whichever task finds no
        # write under way writes everything pending, in as few messages as fit.
        self._out_jobs: list[bytes] = []
        self._out_confirmations: list[bytes] = []
        self._out_stops: list[bytes] = []
        self._writing = False
        self._drained = asyncio.Event()  # set whenever nothing waits to be written
        self._drained.set()
        self._linger: asyncio.TimerHandle | None = None  # armed while confirmations linger
        self._flusher: asyncio.Task[None] | None = None
        self._send: Send | None = None
        # Credit taken by lease calls under way, so two of them never overfill the window.
        self._reserved = 0
        # The last lease call found the stream's queues empty: lease again only on a signal.
        self._dry = False
        # The dispatcher waits for a signal (with `_dry`); a lease written on one, with its
        # credit, and whether another signal came after it was written.
        self._waiting = False
        self._early: tuple[int, Awaitable[Lease]] | None = None
        self._signalled_again = False
        # A queue limit held ready jobs back: wait at most this long for a signal before leasing
        # again (a rate's next token; a slot's end is signalled, with this as the safety net).
        self._retry_s: float | None = None
        # Messages each way, and jobs sent: how well both sides batch (logged at the end).
        self._requests = self._responses = self._sent_jobs = 0
        self._credit = asyncio.Event()
        self._stop = asyncio.Event()
        self._waits: set[asyncio.Event] = set()  # what the dispatcher waits on now
        self._end = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def held(self) -> int:
        return len(self._held)

    def stop_dispatching(self) -> None:
        """No new jobs from now on; acks and fails are still taken (graceful shutdown)."""
        self._halt()

    async def serve(
        self, first: svc.LeaseRequest, requests: AsyncIterator[svc.LeaseRequest], send: Send
    ) -> None:
        """Runs until the worker closes the stream; the caller must then call `close`.

        An empty first response tells the worker its subscription was accepted.
        """
        self._send = send
        await send(b"")  # an empty LeaseResponse
        await self._handle(first, is_first=True)
        dispatcher = self._dispatcher = asyncio.create_task(self._dispatch())
        reader = asyncio.create_task(self._read(requests))
        ended = asyncio.create_task(self._end.wait())
        pending: set[asyncio.Task[Any]] = {reader, dispatcher, ended}
        try:
            while reader in pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if ended in done:
                    await self._emit([], [], now=True)  # the confirmations of what was settled
                    raise ServerDraining("the server is shutting down; reconnect to another")
                if dispatcher in done:
                    dispatcher.result()  # an unexpected failure ends the stream; the worker reconnects
            reader.result()  # re-raises a reader failure (an invalid later message)
            await self._emit([], [], now=True)
        finally:
            reader.cancel()
            ended.cancel()
            self._stop_lingering()

    async def _emit(self, jobs: list[bytes], confirmations: list[bytes], *, now: bool = False) -> None:
        """Queues serialized LeasedJobs and Confirmations, and writes them unless a write is
        under way (that task writes them too, before it returns). Confirmations alone wait
        for a job to go with, up to CONFIRMATION_LINGER_S, unless `now`."""
        self._out_jobs += jobs
        self._out_confirmations += confirmations
        if not (self._out_jobs or now or len(self._out_confirmations) >= LEASE_CHUNK):
            if self._out_confirmations and self._linger is None:
                loop = asyncio.get_running_loop()
                self._linger = loop.call_later(CONFIRMATION_LINGER_S, self._lingered)
            return
        self._stop_lingering()
        if self._writing:
            if len(self._out_confirmations) > MAX_UNSENT_CONFIRMATIONS:
                self._drained.clear()
                await self._drained.wait()  # the caller is the reader: it reads nothing more meanwhile
            return
        assert self._send is not None
        self._writing = True
        try:
            while self._out_jobs or self._out_confirmations or self._out_stops:
                jobs, self._out_jobs = self._out_jobs, []
                confirmations, self._out_confirmations = self._out_confirmations, []
                stops, self._out_stops = self._out_stops, []
                self._sent_jobs += len(jobs)
                for response in framing.lease_responses(jobs, confirmations, stops):
                    self._responses += 1
                    await self._send(response)
        finally:
            self._writing = False
            self._drained.set()

    def _lingered(self) -> None:
        self._linger = None
        self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        try:
            await self._emit([], [], now=True)
        except Exception as error:  # the stream broke: its own tasks end it and report why
            logger.debug("could not write lingering confirmations: %s", error)

    def _stop_lingering(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def stop(self, job_id: str, token: str, reason: StopReason.ValueType) -> None:
        """Tells the worker to stop a job this stream holds under `token` (its lease ended: a
        cancel, a timeout); the job's slot is free at once. Other jobs: nothing to do."""
        if token == "" or self._held.get(job_id) != token:
            return
        del self._held[job_id]
        self._credit.set()
        self._out_stops.append(
            svc.JobStop(job_id=job_id, lease_token=token, reason=reason).SerializeToString()
        )
        self._flusher = asyncio.ensure_future(self._flush())

    def end(self) -> None:
        """Ends the stream with UNAVAILABLE (the grace period of a shutdown is over)."""
        self._end.set()

    async def close(self) -> None:
        """Stops delivery (waiting for a lease call under way) and releases held jobs."""
        logger.debug(
            "stream of %s ends: %d requests, %d responses, %d jobs sent",
            self._sub.worker_id or "a worker", self._requests, self._responses, self._sent_jobs,
        )  # fmt: skip
        self._halt()
        if self._dispatcher is not None:
            with contextlib.suppress(Exception):
                await self._dispatcher
        if self._held:
            leases = list(self._held.items())
            self._held.clear()
            try:
                released = await self._store.release(leases)
                logger.debug("released %d of %d held jobs", released, len(leases))
            except StoreUnavailable:
                logger.warning("could not release %d jobs; their leases will expire", len(leases))

    # -- worker -> server ------------------------------------------------------------------

    async def _read(self, requests: AsyncIterator[svc.LeaseRequest]) -> None:
        async for request in requests:
            self._requests += 1
            if not isinstance(request, svc.LeaseRequest):  # a body that did not parse
                raise FieldViolation("request", "is not a valid LeaseRequest message")
            await self._handle(request, is_first=False)

    async def _handle(self, request: svc.LeaseRequest, *, is_first: bool) -> None:
        validation.settles_per_message(request, self._limits)
        if request.HasField("subscribe") and not is_first:
            self._resubscribe(request.subscribe)
        if request.progress:  # before the acks: a job's last report may ride with its ack
            await self._report(request.progress)
        confirmations: list[bytes] = []
        confirmations += await self._settle(
            "extends",
            request.extends,
            validation.extend,
            self._extend,
            ConfirmationKind.CONFIRMATION_KIND_EXTEND,
        )
        confirmations += await self._settle(
            "acks", request.acks, validation.ack, self._store.ack, ConfirmationKind.CONFIRMATION_KIND_ACK
        )
        confirmations += await self._settle(
            "fails", request.fails, validation.fail, self._store.fail, ConfirmationKind.CONFIRMATION_KIND_FAIL
        )
        # Refill what the acks and fails freed in the same pass, so the worker gets new jobs with
        # the confirmations, in one message.
        refill = (request.acks or request.fails) and not self._dry and not self._stop.is_set()
        jobs = await self._lease_available() if refill else []
        if confirmations or jobs:
            await self._emit(jobs, confirmations)

    async def _report(self, updates: Sequence[svc.ProgressUpdate]) -> None:
        """Records progress of jobs this stream holds; anything else is dropped (unconfirmed, as
        the contract says: a report is not worth ending a stream over)."""
        kept: list[Progress] = []
        for index, update in enumerate(updates[:MAX_PROGRESS_PER_MESSAGE]):
            if self._held.get(update.job_id) != update.lease_token:
                continue  # settled or stopped meanwhile
            try:
                kept.append(validation.progress(update, f"progress[{index}]."))
            except FieldViolation as error:
                logger.warning(
                    "dropped a progress update of job %s: %s",
                    update.job_id,
                    error.message,
                    extra=job_extra(update.job_id, worker_id=self._sub.worker_id),
                )
        if not kept:
            return
        try:
            await self._store.progress(kept)
        except StoreUnavailable as error:
            logger.warning("could not record the progress of %d jobs: %s", len(kept), error)
            return
        self._on_change(update.job_id for update in kept)

    async def _extend(self, items: Sequence[Settle]) -> Sequence[object]:
        # Jobs leased on this stream keep the stream's lease length when extended.
        return await self._store.extend(items, default_lease_ms=self._sub.lease_ms)

    def _resubscribe(self, subscribe: svc.Subscribe) -> None:
        # Fields repeated unchanged are fine (a worker may resend its whole Subscribe); only a
        # real change is refused: the stream's jobs were leased under the first values.
        validation.same_subscription(subscribe, self._sub, self._limits)
        # On an open stream 0 pauses delivery (a worker draining before it closes).
        self._window = validation.in_flight(subscribe.max_in_flight, self._limits, allow_zero=True)
        self._credit.set()

    async def _settle(
        self,
        field: str,
        requests: Sequence[Any],
        validate: Callable[..., Settle],
        apply: Callable[[Sequence[Settle]], Awaitable[Sequence[object]]],
        kind: ConfirmationKind.ValueType,
    ) -> list[bytes]:
        """Applies acks, fails or extends; returns their serialized Confirmations."""
        if not requests:
            return []
        answers: list[bytes] = [b""] * len(requests)
        valid: list[tuple[int, Settle]] = []
        for index, request in enumerate(requests):
            try:
                valid.append((index, validate(request, self._limits, f"{field}[{index}].")))
            except JobQueueError as error:
                refusal = svc.Confirmation(job_id=request.job_id, status=rpc_status_of(error), kind=kind)
                answers[index] = refusal.SerializeToString()
        try:
            outcomes: Sequence[object] = await apply([item for _, item in valid]) if valid else []
        except StoreUnavailable as error:
            outcomes = [error] * len(valid)
        for (index, item), outcome in zip(valid, outcomes, strict=True):
            answers[index] = self._confirm(item, outcome, kind)
        if kind == ConfirmationKind.CONFIRMATION_KIND_ACK:
            self._metrics.acked([item for _, item in valid], outcomes)
        elif kind == ConfirmationKind.CONFIRMATION_KIND_FAIL:
            self._metrics.failed([item for _, item in valid], outcomes)
        if kind != ConfirmationKind.CONFIRMATION_KIND_EXTEND:
            # Lazily: with nobody watching, `on_change` returns before reading a single id.
            self._on_change(
                item.job_id
                for (_, item), outcome in zip(valid, outcomes, strict=True)
                if outcome is None or isinstance(outcome, FailOutcome)
            )
        return answers

    def _confirm(self, item: Settle, outcome: object, kind: ConfirmationKind.ValueType) -> bytes:
        if outcome is None:  # an ack or fail done: the common case, written out
            if self._held.get(item.job_id) == item.token:
                del self._held[item.job_id]
                self._credit.set()
            return _settled(item.job_id, kind)
        confirmation = svc.Confirmation(job_id=item.job_id, kind=kind, status=OK)
        if isinstance(outcome, JobQueueError):
            confirmation.status.CopyFrom(rpc_status_of(outcome))
        if isinstance(outcome, FailOutcome) and outcome.state == JobState.SCHEDULED:
            # The maintenance loop promotes it when due.
            self._on_deadline(outcome.due_ms, item.job_id.rpartition(":")[0])
        if isinstance(outcome, ExtendOutcome):
            confirmation.lease_expire_time.FromMilliseconds(outcome.lease_expire_ms)
        # An ack or fail settles the job whatever the answer; an extend refused because the
        # lease is gone tells the stream the same. STORE_UNAVAILABLE keeps the slot (the write
        # may not have happened: resend), and so does a refused fsynced ack (nothing was
        # written, the job is still this stream's). FSYNC_NOT_CONFIRMED and
        # REPLICATION_NOT_CONFIRMED free it: the write was applied, only its copy on disk or on
        # the replicas is unconfirmed.
        lost = isinstance(outcome, LeaseLost | JobNotFound)
        held = isinstance(outcome, StoreUnavailable | DurabilityUnavailable) and not isinstance(
            outcome, FsyncNotConfirmed | ReplicationNotConfirmed
        )
        settled = (kind != ConfirmationKind.CONFIRMATION_KIND_EXTEND or lost) and not held
        if settled and self._held.get(item.job_id) == item.token:
            # A refused ack still frees the slot: the lease is no longer this stream's.
            del self._held[item.job_id]
            self._credit.set()
        return confirmation.SerializeToString()

    # -- server -> worker ------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while not self._stop.is_set():
            if self._available() <= 0:
                self._credit.clear()
                await self._wait_for(self._credit)
                continue
            layout, queues = self._store.partitions.version, self._stored_queues()
            event = self._signals.watch(queues, self._lease_on_signal)
            try:
                leased = await self._lease_available()
                if leased:
                    await self._emit(leased, [])
                while self._dry and not self._stop.is_set() and layout == self._store.partitions.version:
                    # The lists ran dry during that call. The push that refills one signals
                    # `event`, watched before the call, so waiting now misses nothing and
                    # spares an idle stream a second, empty lease call per job.
                    self._waiting = True
                    try:
                        await self._wait_for(event, self._retry_s)
                    finally:
                        self._waiting = False
                    event.clear()
                    await self._take_early_lease()
            finally:
                self._signals.unwatch(event, queues)

    def _lease_on_signal(self, queue: str) -> None:
        """A signal while the stream waits dry: the lease call is written now, in the
        notifier's call. For this server's own enqueue that is right behind the enqueue's
        script, so Redis takes both in one wake-up and the reply of the one comes with the
        other's, instead of a lease sent after the dispatcher has woken (docs/performance.md)."""
        if self._early is not None:
            self._signalled_again = True  # the early call may have gone before that job
            return
        credit = self._available()
        if not self._waiting or credit <= 0 or self._stop.is_set():
            return
        self._reserved += credit
        self._signalled_again = False
        self._early = (credit, self._store.lease(queue, credit, self._sub.lease_ms, self._sub.worker_id))

    async def _take_early_lease(self) -> None:
        """Sends what the lease written on the signal got; the stream stays dry only when it got
        less than it asked for and no other signal came since (else the next pass leases from
        every queue). Leased jobs are held even when stopping, so `close` releases them."""
        early, self._early = self._early, None
        if early is None:
            self._dry = False
            return
        credit, pending = early
        self._retry_s = None
        try:
            leased = self._encode(await pending)
        except StoreUnavailable:
            leased = []
            self._signalled_again = True
        finally:
            self._reserved -= credit
        self._dry = len(leased) < credit and not self._signalled_again
        if leased and not self._stop.is_set():
            await self._emit(leased, [])

    def _stored_queues(self) -> list[str]:
        """Where the subscribed queues' jobs are: the queues in order of preference, each
        partitioned one's partitions starting one further at each call, so that a stream
        with little credit takes from every partition in turn."""
        self._turn += 1
        stored: list[str] = []
        for queue in self._sub.queues:
            names = self._store.partitions.names(queue)
            start = self._turn % len(names)
            stored += names[start:] + names[:start]
        return stored

    def _available(self) -> int:
        return min(self._window - len(self._held) - self._reserved, LEASE_CHUNK)

    async def _lease_available(self) -> list[bytes]:
        """Leases what the window has room for (none when it is full)."""
        credit = self._available()
        if credit <= 0:
            return []
        self._reserved += credit
        try:
            leased = await self._lease(credit)
        finally:
            self._reserved -= credit
        self._dry = len(leased) < credit
        if self._dry:
            # The dispatcher may have seen this call's credit reserved and gone to wait for
            # credit: give it back, so that it watches the queues and waits for a signal.
            self._credit.set()
        return leased

    async def _lease(self, credit: int) -> list[bytes]:
        """Leases up to `credit` jobs from the stream's queues, in order of preference; returns
        each as a serialized LeasedJob."""
        leased: list[bytes] = []
        self._retry_s = None
        try:
            for queue in self._stored_queues():
                lease = await self._store.lease(
                    queue, credit - len(leased), self._sub.lease_ms, self._sub.worker_id
                )
                leased += self._encode(lease)
                if len(leased) >= credit:
                    break
        except StoreUnavailable:
            logger.warning("lease failed: redis unavailable; retrying after the sweep interval")
            await self._wait_for(asyncio.Event(), self._sweep_interval_s)  # retry after a pause
        return leased

    def _encode(self, lease: Lease) -> list[bytes]:
        if lease.retry_ms >= 0:  # a limit held jobs back: lease again then, signal or not
            wait_s = (lease.retry_ms - lease.start_ms) / 1000 if lease.retry_ms else self._sweep_interval_s
            self._retry_s = max(0.001, min(wait_s, self._retry_s or wait_s))
        shared = job_wire.lease_constants(lease.start_ms, lease.worker_id)
        encoded = []
        for job in lease.jobs:
            self._held[job.job_id] = job.token
            encoded.append(
                job_wire.leased_job(
                    job.wire,
                    shared,
                    token=job.token,
                    lease_expire_ms=job.lease_expire_ms,
                    attempts=job.attempts,
                    create_ms=job.create_ms,
                    due_ms=job.due_ms,
                    last_error=job.last_error,
                    errors=job.errors,
                )
            )
        self._on_change(job.job_id for job in lease.jobs)
        self._metrics.leased(lease)
        earliest: dict[str, int] = {}  # the maintenance loop reaps leases that run out
        for job in lease.jobs:
            queue = job.job_id.rpartition(":")[0]
            if job.lease_expire_ms < earliest.get(queue, job.lease_expire_ms + 1):
                earliest[queue] = job.lease_expire_ms
        for queue, deadline in earliest.items():
            self._on_deadline(deadline, queue)
        return encoded

    async def _wait_for(self, event: asyncio.Event, timeout_s: float | None = None) -> None:
        """Waits for `event` or a stop (or `timeout_s`). An idle stream costs nothing while it
        waits: a signal it missed is made good by the maintenance pass, which wakes the
        streams of watched queues that have ready jobs (maintenance.py)."""
        if self._stop.is_set():
            return
        self._waits.add(event)  # a stop sets it: one future to wake on, not one per cause
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            self._waits.discard(event)

    def _halt(self) -> None:
        self._stop.set()
        for event in self._waits:
            event.set()
