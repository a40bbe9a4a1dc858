"""JobQueueService: validate each request, call the store, map records to messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_status import rpc_status

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.api import (
    convert,
    dependency_graph,
    job_wire,
    paging,
    stats_paging,
    token_admin,
    validation,
    wire,
)
from jobqueue_server.api.enqueue_stream import EnqueueStreamSession
from jobqueue_server.api.group_commit import GroupCommit
from jobqueue_server.api.job_watches import ANNOUNCE_EVERY_S, JobWatches
from jobqueue_server.api.lease_session import LeaseSession
from jobqueue_server.api.ready_wakeup import ReadyWakeup
from jobqueue_server.api.registration import Malformed
from jobqueue_server.api.schedule_admin import ScheduleAdmin
from jobqueue_server.api.status import maps_errors, rpc_status_of
from jobqueue_server.api.webhook_admin import WebhookAdmin
from jobqueue_server.auth.policy import current_principal
from jobqueue_server.errors import (
    FieldViolation,
    JobNotFound,
    JobQueueError,
    ServerDraining,
    StoreUnavailable,
)
from jobqueue_server.ids import new_ulid, new_ulids
from jobqueue_server.observability.metrics import NO_METRICS, JobMetrics
from jobqueue_server.store import Durability, EnqueueResult, FailOutcome, JobState, NewJob, Store
from jobqueue_server.store.keys import stops_channel, watch_channel
from jobqueue_server.store.signals import QueueSignals
from jobqueue_server.store.tokens import TokenStore

logger = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
_FINISHED = frozenset({job_pb2.JOB_STATE_COMPLETED, job_pb2.JOB_STATE_DEAD, job_pb2.JOB_STATE_CANCELLED})
# The reasons the scripts publish with a stop (store/keys.py stops_channel).
_STOP_REASONS = {"cancelled": svc.STOP_REASON_CANCELLED, "timed_out": svc.STOP_REASON_TIMED_OUT}


class JobQueueServicer(svc_grpc.JobQueueServiceServicer):
    """The gRPC face of the store. Holds no job state: any number can share one Redis."""

    def __init__(
        self,
        store: Store,
        signals: QueueSignals,
        limits: validation.Limits,
        sweep_interval_s: float,
        on_scheduled: Callable[[int, str], None],
        tokens: TokenStore,
        tokens_changed: Callable[[], Awaitable[None]] | None = None,
        max_schedules: int = 10_000,
        schedules_changed: Callable[[], None] = lambda: None,
        metrics: JobMetrics = NO_METRICS,
    ) -> None:
        """`on_scheduled(ms, queue)` asks the maintenance loop for a pass that looks at `queue`
        at a due time or lease deadline; `schedules_changed()` wakes this server's scheduler."""
        self._store = store
        self._metrics = metrics
        self._schedules = ScheduleAdmin(
            store.schedules, store.now_ms, limits, max_schedules, schedules_changed
        )
        self._tokens = tokens
        self._webhooks = WebhookAdmin(store.webhooks, store.now_ms)
        # Reloads this server's view of the tokens (--auth): a revocation holds here at once.
        self._tokens_changed = tokens_changed
        self._signals = signals
        self._limits = limits
        self._sweep_interval_s = sweep_interval_s
        self._on_scheduled = on_scheduled
        self._group_commit = GroupCommit(self._write)
        self._sessions: set[LeaseSession] = set()
        self._enqueue_streams: set[EnqueueStreamSession] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._draining = False
        self._watches = JobWatches(store.publish, watch_channel(store.config.key_prefix))
        signals.listen(stops_channel(store.config.key_prefix), self._on_stop_message)
        signals.listen(self._watches.channel, self._watches.on_message)

    # -- producers -------------------------------------------------------------------------

    @maps_errors
    async def Enqueue(self, request: svc.EnqueueRequest, context: Context) -> bytes:  # type: ignore[override]  # noqa: N802
        """Answers with the EnqueueResponse already serialized (registration.py)."""
        job = validation.new_job(
            request, self._limits, new_ulid(self._store.clock.now_ms()), partitions=self._store.partitions
        )
        level = validation.durability(request.durability, "durability", self._limits)
        if job.depends_on:
            await dependency_graph.require_parents([request], self._store.dependencies.missing, batch=False)
        outcome = await self._group_commit.enqueue(job, level)
        return wire.enqueue_response(outcome.job_id, outcome.duplicate)

    @maps_errors
    async def EnqueueBatch(  # type: ignore[override]  # noqa: N802
        self, request: svc.EnqueueBatchRequest, context: Context
    ) -> bytes:
        """Answers with the EnqueueBatchResponse already serialized (registration.py)."""
        requests = list(request.requests)
        if request.queue:  # the queue of the requests that name none (the HTTP mapping's path)
            validation.queue_name(request.queue, "queue")
            for job in requests:
                if not job.queue:
                    job.queue = request.queue
        ulids = new_ulids(self._store.clock.now_ms(), len(requests))
        jobs = validation.new_jobs(requests, self._limits, ulids, self._store.partitions)
        level = validation.batch_durability(request, self._limits)
        await dependency_graph.require_parents(requests, self._store.dependencies.missing, batch=True)
        result = await self._write(jobs, level)
        return wire.enqueue_batch_response((o.job_id, o.duplicate) for o in result.outcomes)

    async def EnqueueStream(  # type: ignore[override]  # noqa: N802
        self, requests: AsyncIterator[svc.EnqueueStreamRequest | Malformed], context: Context
    ) -> None:
        """Writes EnqueueStreamResponses already serialized (registration.py)."""
        if self._draining:
            error: JobQueueError = ServerDraining("the server is shutting down; connect to another")
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))
            return
        session = EnqueueStreamSession(
            self._group_commit,
            self._limits,
            self._store.clock.now_ms,
            lambda: self._draining,
            self._store.dependencies.missing,
            self._store.partitions,
        )
        self._enqueue_streams.add(session)
        try:
            await session.serve(requests, context.write)
        except JobQueueError as error:
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))
        finally:
            self._enqueue_streams.discard(session)

    def _on_stop_message(self, data: bytes) -> None:
        """A job's lease ended under its worker (a cancel, a timeout, on any server): the
        stream of this server holding it, if one does, tells its worker to stop."""
        job_id, token, reason = [*data.decode().split("|", 2), "", ""][:3]
        code = _STOP_REASONS.get(reason, svc.STOP_REASON_UNSPECIFIED)
        for session in self._sessions:
            session.stop(job_id, token, code)
        self._watches.changed([job_id])

    async def enqueue_scheduled(self, requests: Sequence[tuple[int, svc.EnqueueRequest]]) -> list[str]:
        """The jobs of schedule ticks (the scheduler's), each dated by its tick; their ids."""
        jobs = [
            validation.new_job(
                request, self._limits, new_ulid(tick), "schedule.template.", partitions=self._store.partitions
            )
            for tick, request in requests
        ]
        result = await self._write(jobs, self._limits.default_durability)
        return [outcome.job_id for outcome in result.outcomes]

    async def _write(self, jobs: list[NewJob], durability: Durability) -> EnqueueResult:
        """Enqueues; wakes this server's streams on queues that got ready jobs (as early as the
        pipeline allows: ready_wakeup.py); times the next promotion."""
        wakeup = ReadyWakeup(jobs, self._signals.notify)
        try:
            result = await self._store.enqueue(jobs, durability, wakeup.sent)
        finally:
            wakeup.finish()  # also after a failure: some queues' jobs may have been written
        self._metrics.enqueued(result.outcomes)
        for queue, due_ms in result.due_ms_by_queue.items():
            self._on_scheduled(due_ms, queue)
        for job in jobs:
            if job.start_deadline_ms:  # the maintenance pass cancels it then, unless leased
                self._on_scheduled(job.start_deadline_ms, job.queue)
        return result

    # -- reads -----------------------------------------------------------------------------

    @maps_errors
    async def GetStatus(self, request: svc.GetStatusRequest, context: Context) -> svc.GetStatusResponse:  # noqa: N802
        record = await self._store.get(validation.job_id(request.job_id))
        return svc.GetStatusResponse(job=job_wire.job_message(record))

    async def WatchJob(  # noqa: N802
        self, request: svc.WatchJobRequest, context: Context
    ) -> AsyncIterator[svc.WatchJobResponse]:
        try:
            if isinstance(request, Malformed):
                raise request.error()
            job_id = validation.job_id(request.job_id)
            record = await self._store.get(job_id)
        except JobQueueError as error:
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))
            return
        changed = self._watches.watch(job_id)
        loop = asyncio.get_running_loop()
        announced = loop.time()
        try:
            sent = b""
            while True:
                job = job_wire.job_message(record)
                serialized = job.SerializeToString()
                if serialized != sent:
                    yield svc.WatchJobResponse(job=job)
                    sent = serialized
                if job.state in _FINISHED or self._draining:
                    return
                with contextlib.suppress(TimeoutError):
                    # A change announced by a server wakes it; a re-read each sweep interval sees
                    # the ones none announces (a maintenance pass promoting or requeueing).
                    await asyncio.wait_for(changed.wait(), self._sweep_interval_s)
                changed.clear()
                if loop.time() - announced > ANNOUNCE_EVERY_S:
                    self._watches.announce(job_id)
                    announced = loop.time()
                try:
                    record = await self._store.get(job_id)
                except StoreUnavailable:
                    continue  # Redis away for a moment: read again at the next wake-up
        except JobNotFound:
            return  # trimmed while watched: it had finished
        finally:
            self._watches.unwatch(job_id, changed)

    @maps_errors
    async def Stats(self, request: svc.StatsRequest, context: Context) -> svc.StatsResponse:  # noqa: N802
        next_token = ""
        if request.queue:
            queues = [validation.queue_name(request.queue, "queue")]
        else:
            queues = await self._store.queue_names()
            principal = current_principal.get()
            if principal is not None and not principal.unrestricted:  # only the queues it may see
                queues = [queue for queue in queues if principal.may_touch(queue)]
            queues, next_token = stats_paging.page_of(request, queues)
        counts = await self._store.stats(queues)
        return svc.StatsResponse(queues=[convert.queue_stats(c) for c in counts], next_page_token=next_token)

    @maps_errors
    async def ListJobs(self, request: svc.ListJobsRequest, context: Context) -> svc.ListJobsResponse:  # noqa: N802
        return await paging.list_page(self._store, paging.page_of(request))

    # -- settling with a token -------------------------------------------------------------

    @maps_errors
    async def Ack(self, request: svc.AckRequest, context: Context) -> svc.AckResponse:  # noqa: N802
        item = validation.ack(request, self._limits)
        (outcome,) = await self._store.ack([item])
        self._metrics.acked([item], [outcome])
        if outcome is not None:
            raise outcome
        self._watches.changed([request.job_id])
        return svc.AckResponse()

    @maps_errors
    async def Fail(self, request: svc.FailRequest, context: Context) -> svc.FailResponse:  # noqa: N802
        item = validation.fail(request, self._limits)
        (outcome,) = await self._store.fail([item])
        self._metrics.failed([item], [outcome])
        if isinstance(outcome, JobQueueError):
            raise outcome
        assert isinstance(outcome, FailOutcome)
        self._watches.changed([request.job_id])
        if outcome.state == JobState.SCHEDULED:
            self._on_scheduled(outcome.due_ms, request.job_id.rpartition(":")[0])
        return svc.FailResponse(
            state=convert.STATE_TO_PROTO[outcome.state], schedule_time=convert.timestamp(outcome.due_ms)
        )

    @maps_errors
    async def Extend(self, request: svc.ExtendRequest, context: Context) -> svc.ExtendResponse:  # noqa: N802
        (outcome,) = await self._store.extend([validation.extend(request, self._limits)])
        if isinstance(outcome, JobQueueError):
            raise outcome
        return svc.ExtendResponse(lease_expire_time=convert.timestamp(outcome.lease_expire_ms))

    # -- operators -------------------------------------------------------------------------

    @maps_errors
    async def Cancel(self, request: svc.CancelRequest, context: Context) -> svc.CancelResponse:  # noqa: N802
        await self._store.cancel(validation.job_id(request.job_id))
        self._metrics.cancelled(request.job_id)
        self._watches.changed([request.job_id])
        return svc.CancelResponse()

    @maps_errors
    async def Retry(self, request: svc.RetryRequest, context: Context) -> svc.RetryResponse:  # noqa: N802
        job_id = validation.job_id(request.job_id)
        await self._store.retry(job_id)
        self._metrics.redriven(job_id)
        self._watches.changed([job_id])
        self._signals.notify(job_id.rpartition(":")[0])
        return svc.RetryResponse()

    @maps_errors
    async def SetQueueLimits(  # noqa: N802
        self, request: svc.SetQueueLimitsRequest, context: Context
    ) -> svc.SetQueueLimitsResponse:
        queue = validation.queue_name(request.queue, "queue")
        limits = validation.queue_limits(request.limits)
        validation.limits_fit(limits, self._store.partitions.count(queue), "limits.")
        await self._store.set_limits(queue, limits)
        logger.info("queue %s limits: %s", queue, "none" if limits.empty else limits)
        return svc.SetQueueLimitsResponse()

    @maps_errors
    async def CreateQueue(self, request: svc.CreateQueueRequest, context: Context) -> svc.CreateQueueResponse:  # noqa: N802
        queue = validation.queue_name(request.queue, "queue")
        partitions = validation.partitions(request.partitions, "partitions")
        await self._store.partitions.refresh()  # the count now, not this server's copy
        (counts,) = await self._store.stats([queue])
        if partitions < counts.partitions:
            raise FieldViolation(
                "partitions",
                f"is {partitions}, and queue {queue!r} has {counts.partitions}: partitions can be "
                "added, never removed",
            )
        if counts.limits is not None:
            validation.limits_fit(counts.limits, partitions, "the queue's limits.")
        before, now, fresh = await self._store.create_queue(queue, partitions)
        if now > before:
            logger.info("queue %s has %d partitions (had %d)", queue, now, before)
            self._signals.notify(queue)  # this server's streams on it watch the new ones too
        return svc.CreateQueueResponse(queue=queue, partitions=now, changed=fresh or now > before)

    @maps_errors
    async def PauseQueue(self, request: svc.PauseQueueRequest, context: Context) -> svc.PauseQueueResponse:  # noqa: N802
        changed = await self._store.pause(validation.queue_name(request.queue, "queue"))
        return svc.PauseQueueResponse(changed=changed)

    @maps_errors
    async def ResumeQueue(self, request: svc.ResumeQueueRequest, context: Context) -> svc.ResumeQueueResponse:  # noqa: N802
        queue = validation.queue_name(request.queue, "queue")
        changed = await self._store.resume(queue)
        for name in self._store.partitions.names(queue):  # this server's streams at once (the
            self._signals.notify(name)  # wake-up reaches the others)
        return svc.ResumeQueueResponse(changed=changed)

    # -- tokens (the interceptor lets only unrestricted admins through) ------------------

    @maps_errors
    async def CreateToken(self, request: svc.CreateTokenRequest, context: Context) -> svc.CreateTokenResponse:  # noqa: N802
        text, record = token_admin.new_record(request, self._store.clock.now_ms())
        await token_admin.add(self._tokens, record)
        logger.info("token %s created (%s, %s)", record.token_id, record.role, ",".join(record.queues))
        return svc.CreateTokenResponse(token=text, info=token_admin.info(record))

    @maps_errors
    async def ListTokens(self, request: svc.ListTokensRequest, context: Context) -> svc.ListTokensResponse:  # noqa: N802
        _, records = await self._tokens.load()
        return svc.ListTokensResponse(
            tokens=[token_admin.info(r) for r in sorted(records, key=lambda r: r.token_id)]
        )

    @maps_errors
    async def RevokeToken(self, request: svc.RevokeTokenRequest, context: Context) -> svc.RevokeTokenResponse:  # noqa: N802
        await token_admin.revoke(self._tokens, request.token_id)
        if self._tokens_changed is not None:
            await self._tokens_changed()
        logger.info("token %s revoked", request.token_id)
        return svc.RevokeTokenResponse()

    # -- webhooks (an admin token for every queue; docs/monitoring.md) ----------------------

    @maps_errors
    async def CreateWebhook(  # noqa: N802
        self, request: svc.CreateWebhookRequest, context: Context
    ) -> svc.CreateWebhookResponse:
        created = await self._webhooks.create(request.webhook)
        logger.info("webhook %s created for %s", created.webhook.id, created.webhook.queue or "every queue")
        return created

    @maps_errors
    async def ListWebhooks(  # noqa: N802
        self, request: svc.ListWebhooksRequest, context: Context
    ) -> svc.ListWebhooksResponse:
        return await self._webhooks.list()

    @maps_errors
    async def DeleteWebhook(  # noqa: N802
        self, request: svc.DeleteWebhookRequest, context: Context
    ) -> svc.DeleteWebhookResponse:
        await self._webhooks.delete(request.id)
        logger.info("webhook %s deleted", request.id)
        return svc.DeleteWebhookResponse()

    # -- schedules (an admin token for every queue; docs/schedules.md) ----------------------

    @maps_errors
    async def CreateSchedule(  # noqa: N802
        self, request: svc.CreateScheduleRequest, context: Context
    ) -> svc.CreateScheduleResponse:
        schedule = await self._schedules.create(request.schedule)
        logger.info("schedule %s created", schedule.name)
        return svc.CreateScheduleResponse(schedule=schedule)

    @maps_errors
    async def GetSchedule(self, request: svc.GetScheduleRequest, context: Context) -> svc.GetScheduleResponse:  # noqa: N802
        return svc.GetScheduleResponse(schedule=await self._schedules.get(request.name))

    @maps_errors
    async def ListSchedules(  # noqa: N802
        self, request: svc.ListSchedulesRequest, context: Context
    ) -> svc.ListSchedulesResponse:
        return await self._schedules.list(request.page_size, request.page_token)

    @maps_errors
    async def UpdateSchedule(  # noqa: N802
        self, request: svc.UpdateScheduleRequest, context: Context
    ) -> svc.UpdateScheduleResponse:
        return svc.UpdateScheduleResponse(schedule=await self._schedules.update(request.schedule))

    @maps_errors
    async def DeleteSchedule(  # noqa: N802
        self, request: svc.DeleteScheduleRequest, context: Context
    ) -> svc.DeleteScheduleResponse:
        await self._schedules.delete(request.name)
        logger.info("schedule %s deleted", request.name)
        return svc.DeleteScheduleResponse()

    @maps_errors
    async def PauseSchedule(  # noqa: N802
        self, request: svc.PauseScheduleRequest, context: Context
    ) -> svc.PauseScheduleResponse:
        return svc.PauseScheduleResponse(changed=await self._schedules.pause(request.name))

    @maps_errors
    async def ResumeSchedule(  # noqa: N802
        self, request: svc.ResumeScheduleRequest, context: Context
    ) -> svc.ResumeScheduleResponse:
        return svc.ResumeScheduleResponse(changed=await self._schedules.resume(request.name))

    # -- workers ---------------------------------------------------------------------------

    # Writes with context.write rather than yielding, hence the differing return type.
    async def Lease(  # type: ignore[override]  # noqa: N802
        self, requests: AsyncIterator[svc.LeaseRequest], context: Context
    ) -> None:
        try:
            # A stream that never subscribes would hold its resources for ever.
            first = await asyncio.wait_for(anext(aiter(requests), None), self._limits.subscribe_timeout_s)
        except TimeoutError:
            late = FieldViolation(
                "subscribe", f"a Lease stream must subscribe within {self._limits.subscribe_timeout_s:g} s"
            )
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(late)))
            return
        if first is None:
            return
        try:
            if self._draining:
                raise ServerDraining("the server is shutting down; connect to another")
            if isinstance(first, Malformed):
                raise first.error()
            if not first.HasField("subscribe"):
                raise FieldViolation("subscribe", "the first message on a Lease stream must subscribe")
            subscription = validation.subscription(first.subscribe, self._limits)
        except JobQueueError as error:
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))
            return
        session = LeaseSession(
            self._store,
            self._signals,
            self._limits,
            subscription,
            self._sweep_interval_s,
            self._on_scheduled,
            self._watches.changed,
            self._metrics,
        )
        self._sessions.add(session)
        try:
            await session.serve(first, requests, context.write)
        except JobQueueError as error:
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))
        finally:
            self._sessions.discard(session)
            # Shielded and tracked: a cancelled call (the worker vanished) must still release.
            task = asyncio.create_task(session.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            await asyncio.shield(task)

    def drain(self) -> None:
        """Graceful shutdown, step one: no new streams, no new jobs on open ones."""
        self._draining = True
        for session in self._sessions:
            session.stop_dispatching()
        for enqueue_stream in self._enqueue_streams:
            enqueue_stream.end()

    def end_streams(self) -> None:
        """Graceful shutdown, step two: open streams end with UNAVAILABLE; held jobs are released."""
        for session in self._sessions:
            session.end()

    @property
    def open_streams(self) -> int:
        return len(self._sessions)

    @property
    def held_jobs(self) -> int:
        return sum(session.held for session in self._sessions)

    async def wait_closed(self) -> None:
        """Waits for the release of jobs held by streams that ended."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
