# The source of sync_client.py: after a change, run python scripts/unasync.py to write it again.
"""AsyncClient: the producer API (enqueue, inspect, cancel, retry, wait) on a grpc.aio channel."""

# `timeout` is the gRPC deadline sent to the server with each call, as in grpc's own API,
# not a local timeout around the call.
# ruff: noqa: ASYNC109

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, TypeVar, Unpack

import grpc
from opentelemetry.trace import TracerProvider

from jobqueue import convert, messages, timing, tracing
from jobqueue.aio_batcher import AsyncBatcher
from jobqueue.backoff import poll_intervals, poll_timeout
from jobqueue.batching import DEFAULT_BATCHING, Batching
from jobqueue.channel import ChannelOption, aio_channel
from jobqueue.errors import DeadlineExceeded, InvalidArgument, Unavailable, Unimplemented, from_rpc_error
from jobqueue.messages import DEFAULT_TIMEOUT_S, DEFAULT_WAIT_S
from jobqueue.models import (
    DurabilityName,
    EnqueueOptions,
    EnqueueResult,
    JobInfo,
    JobSpec,
    JobState,
    ListFilters,
    NewToken,
    NewWebhook,
    QueueInfo,
    QueueStats,
    TokenInfo,
    TokenRole,
    WebhookInfo,
)
from jobqueue.schedules import Schedule, ScheduleOptions, schedule_message, schedule_of
from jobqueue.security import Tls
from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


class AsyncClient:
    """Producer client on a grpc.aio channel.

    Give a target ("localhost:50051") to let the client own its channel (closed by
    ``close()`` or ``async with``), or an existing ``grpc.aio.Channel`` to share one. Every
    call takes an optional ``timeout`` in seconds (default: the client's, 10 s) and raises
    a :mod:`jobqueue.errors` class when it fails. Calls are not retried: ``enqueue`` is
    only safe to repeat with an ``idempotency_key``.

    Concurrent ``enqueue`` calls are sent together in EnqueueBatch calls, each caller still
    getting its own id or error (:class:`jobqueue.Batching`; ``batching=None`` sends each
    alone). ``close()`` sends what is pending first.

    ``token`` (or JOBQ_TOKEN) is sent on every call; ``tls`` (or JOBQ_TLS, JOBQ_TLS_CA,
    JOBQ_TLS_CLIENT_CERT/KEY) connects with TLS (:class:`jobqueue.Tls`, docs/security.md).
    """

    def __init__(
        self,
        target: str | grpc.aio.Channel,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        token: str | None = None,
        tls: Tls | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[ChannelOption] = (),
        batching: Batching | None = DEFAULT_BATCHING,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._owns_channel = isinstance(target, str)
        self._channel = (
            aio_channel(target, credentials, options, token=token, tls=tls)
            if isinstance(target, str)
            else target
        )
        self._stub: svc_grpc.JobQueueServiceAsyncStub = svc_grpc.JobQueueServiceStub(self._channel)
        self._batcher = AsyncBatcher(self._stub, batching) if batching is not None else None
        self._tracer = tracing.Tracer(tracer_provider)
        self.timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Sends the jobs still pending (as :meth:`flush`), then closes the channel if the
        client created it."""
        if self._batcher is not None:
            await self._batcher.close()
        if self._owns_channel:
            await self._channel.close()

    async def flush(self) -> None:
        """Sends the jobs waiting to be batched and returns once every batch pending now is
        answered (every ``enqueue`` made before has its id or its error)."""
        if self._batcher is not None:
            await self._batcher.flush()

    async def enqueue(
        self,
        queue: str,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        timeout: float | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> EnqueueResult:
        """Adds one job; `options` are :class:`jobqueue.EnqueueOptions` (priority, delay or
        run_at, max_attempts, idempotency_key, lease_duration, metadata, backoff, durability).

        `durability="fsynced"` returns only once Redis has the job on disk (docs/durability.md).
        """
        request = messages.build_request(queue, payload, options)
        with tracing.send_span(self._tracer, queue) as span:
            tracing.inject_job(span, request.metadata)
            if self._batcher is not None:
                result = await self._batcher.submit(request, self.timeout if timeout is None else timeout)
            else:
                response = await self._call(self._stub.Enqueue, request, timeout, tracing.call_metadata(span))
                result = messages.enqueue_result(response)
            if span.is_recording():
                span.set_attribute("messaging.message.id", result.job_id)
            return result

    async def enqueue_many(
        self,
        jobs: Sequence[JobSpec | Mapping[str, Any]],
        *,
        durability: DurabilityName | None = None,
        timeout: float | None = None,
    ) -> list[EnqueueResult]:
        """Adds many jobs with EnqueueBatch, 1,000 per call; results come in the order given.

        Each job is a :class:`jobqueue.JobSpec`: a dict of `queue`, `payload` and any
        EnqueueOptions. Each call is all-or-nothing; when a later call fails, the jobs of
        earlier calls stay.
        """
        level = convert.to_durability(durability)
        results: list[EnqueueResult] = []
        for batch in messages.batches(messages.batch_requests(jobs)):
            request = svc.EnqueueBatchRequest(requests=batch, durability=level)
            with tracing.send_span(self._tracer, messages.common_queue(batch), len(batch)) as span:
                for job in request.requests:
                    tracing.inject_job(span, job.metadata)
                try:
                    response = await self._call(
                        self._stub.EnqueueBatch, request, timeout, tracing.call_metadata(span)
                    )
                except InvalidArgument as error:
                    raise messages.shift_field(error, len(results)) from error
            results += [messages.enqueue_result(r) for r in response.responses]
        return results

    async def get(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        """The job as stored now; raises NotFound when it does not exist."""
        response = await self._call(self._stub.GetStatus, svc.GetStatusRequest(job_id=job_id), timeout)
        return convert.job_info(response.job)

    async def stats(self, queue: str | None = None, *, timeout: float | None = None) -> list[QueueStats]:
        """Counts by state for one queue, or for every known queue (sorted by name, read a
        page of up to 1,000 queues at a time)."""
        found: list[QueueStats] = []
        token = ""
        while True:
            request = svc.StatsRequest(queue=queue or "", page_token=token)
            response = await self._call(self._stub.Stats, request, timeout)
            found += [convert.queue_stats(s) for s in response.queues]
            token = response.next_page_token
            if not token:
                return found

    async def list_jobs(
        self,
        queue: str,
        state: JobState | str,
        *,
        page_size: int = 100,
        timeout: float | None = None,
        **filters: Unpack[ListFilters],
    ) -> AsyncIterator[JobInfo]:
        """Every job of `queue` in `state`, fetched a page at a time: queued ones in lease
        order, scheduled by due time, active by deadline, finished ones newest first.
        `filters` (:class:`jobqueue.ListFilters`: created_after, created_before, metadata)
        are applied by the server."""
        token = ""
        while True:
            request = messages.list_request(queue, state, page_size, token, filters)
            page = await self._call(self._stub.ListJobs, request, timeout)
            for job in page.jobs:
                yield convert.job_info(job)
            token = page.next_page_token
            if not token:
                return

    async def cancel(self, job_id: str, *, timeout: float | None = None) -> None:
        """Stops a scheduled or queued job from running; WrongState once it was leased."""
        await self._call(self._stub.Cancel, svc.CancelRequest(job_id=job_id), timeout)

    async def retry(self, job_id: str, *, timeout: float | None = None) -> None:
        """Sends a dead or cancelled job back to its queue with its attempts reset."""
        await self._call(self._stub.Retry, svc.RetryRequest(job_id=job_id), timeout)

    async def create_queue(
        self, queue: str, *, partitions: int = 1, timeout: float | None = None
    ) -> QueueInfo:
        """Declares `queue` with `partitions` partitions (1 to 64), or adds partitions to it:
        a partitioned queue spreads over a cluster's nodes and is still one queue to every
        call. Fewer partitions than it has is refused (InvalidArgument)."""
        response = await self._call(
            self._stub.CreateQueue, svc.CreateQueueRequest(queue=queue, partitions=partitions), timeout
        )
        return QueueInfo(response.queue, response.partitions, response.changed)

    async def pause_queue(self, queue: str, *, timeout: float | None = None) -> bool:
        """Stops delivery from `queue` on every server until `resume_queue`: enqueues still
        work and leased jobs run to their end. False when it was paused already."""
        response = await self._call(self._stub.PauseQueue, svc.PauseQueueRequest(queue=queue), timeout)
        return bool(response.changed)

    async def resume_queue(self, queue: str, *, timeout: float | None = None) -> bool:
        """Lets a paused queue's jobs be leased again and wakes the workers waiting on it.
        False when it was not paused."""
        response = await self._call(self._stub.ResumeQueue, svc.ResumeQueueRequest(queue=queue), timeout)
        return bool(response.changed)

    async def set_queue_limits(
        self,
        queue: str,
        *,
        rate_per_second: float = 0,
        burst: int = 0,
        max_active: int = 0,
        group_rate_per_second: float = 0,
        group_burst: int = 0,
        group_max_active: int = 0,
        timeout: float | None = None,
    ) -> None:
        """Limits `queue` on every server: at most `rate_per_second` jobs leased per second
        (up to `burst` at once after a pause) and `max_active` running at once; the `group_`
        limits are the same for each group of the queue (``group_key``: one running job per
        customer is ``group_max_active=1``). 0 is no limit, all 0 removes them. Held-back jobs
        stay queued and come as the limits allow."""
        limits = job_pb2.QueueLimits(
            rate_per_second=rate_per_second,
            burst=burst,
            max_active=max_active,
            group_rate_per_second=group_rate_per_second,
            group_burst=group_burst,
            group_max_active=group_max_active,
        )
        await self._call(
            self._stub.SetQueueLimits, svc.SetQueueLimitsRequest(queue=queue, limits=limits), timeout
        )

    # -- schedules (an admin token for every queue; docs/schedules.md) ----------------------

    async def create_schedule(
        self,
        name: str,
        queue: str,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        timeout: float | None = None,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Makes a job on `queue` at each tick of `cron` (5 fields, or 6 with seconds first, in
        `time_zone`) or `every` (seconds or a timedelta): exactly one job per tick however many
        servers run. `catch_up` says what ticks missed during downtime make: nothing ("skip"),
        one job ("once"), or one each, up to `catch_up_limit` ("all"). The job's own options
        are enqueue's. ScheduleExists when the name is taken."""
        request = svc.CreateScheduleRequest(schedule=schedule_message(name, queue, payload, options))
        return schedule_of((await self._call(self._stub.CreateSchedule, request, timeout)).schedule)

    async def get_schedule(self, name: str, *, timeout: float | None = None) -> Schedule:
        """The schedule, with its next and last run; ScheduleNotFound when there is none."""
        response = await self._call(self._stub.GetSchedule, svc.GetScheduleRequest(name=name), timeout)
        return schedule_of(response.schedule)

    async def list_schedules(
        self, *, page_size: int = 100, timeout: float | None = None
    ) -> AsyncIterator[Schedule]:
        """Every schedule, sorted by name, fetched a page at a time."""
        token = ""
        while True:
            request = svc.ListSchedulesRequest(page_size=page_size, page_token=token)
            page = await self._call(self._stub.ListSchedules, request, timeout)
            for schedule in page.schedules:
                yield schedule_of(schedule)
            token = page.next_page_token
            if not token:
                return

    async def update_schedule(
        self,
        name: str,
        queue: str,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        timeout: float | None = None,
        **options: Unpack[ScheduleOptions],
    ) -> Schedule:
        """Replaces the definition of schedule `name` with these arguments (as for
        `create_schedule`), keeping its paused state and last run."""
        request = svc.UpdateScheduleRequest(schedule=schedule_message(name, queue, payload, options))
        return schedule_of((await self._call(self._stub.UpdateSchedule, request, timeout)).schedule)

    async def delete_schedule(self, name: str, *, timeout: float | None = None) -> None:
        """Removes the schedule; the jobs it made stay. ScheduleNotFound when there is none."""
        await self._call(self._stub.DeleteSchedule, svc.DeleteScheduleRequest(name=name), timeout)

    async def pause_schedule(self, name: str, *, timeout: float | None = None) -> bool:
        """Stops the schedule's ticks until `resume_schedule`; False when it was paused already."""
        response = await self._call(self._stub.PauseSchedule, svc.PauseScheduleRequest(name=name), timeout)
        return bool(response.changed)

    async def resume_schedule(self, name: str, *, timeout: float | None = None) -> bool:
        """Starts a paused schedule again from its next tick (the ticks it missed are not made
        up); False when it was not paused."""
        response = await self._call(self._stub.ResumeSchedule, svc.ResumeScheduleRequest(name=name), timeout)
        return bool(response.changed)

    # -- tokens (an admin token for every queue; docs/security.md) --------------------------

    async def create_token(
        self,
        name: str,
        role: TokenRole,
        queues: Sequence[str],
        *,
        ttl: timedelta | float | None = None,
        timeout: float | None = None,
    ) -> NewToken:
        """Issues an API token; its secret is in the result only (the server keeps a hash)."""
        request = svc.CreateTokenRequest(name=name, role=convert.to_token_role(role), queues=list(queues))
        if ttl is not None:
            request.ttl.CopyFrom(convert.to_duration(ttl, "ttl"))
        response = await self._call(self._stub.CreateToken, request, timeout)
        return NewToken(response.token, convert.token_info(response.info))

    async def list_tokens(self, *, timeout: float | None = None) -> list[TokenInfo]:
        """Every token, sorted by id, without secrets."""
        response = await self._call(self._stub.ListTokens, svc.ListTokensRequest(), timeout)
        return [convert.token_info(t) for t in response.tokens]

    async def revoke_token(self, token_id: str, *, timeout: float | None = None) -> None:
        """Deletes a token: calls with it are refused, its open streams end within seconds."""
        await self._call(self._stub.RevokeToken, svc.RevokeTokenRequest(token_id=token_id), timeout)

    # -- webhooks (an admin token for every queue; docs/monitoring.md) ----------------------

    async def create_webhook(
        self,
        url: str,
        *,
        queue: str | None = None,
        oldest_job_age: timedelta | float | None = None,
        dead_jobs: int = 0,
        allow_private_network: bool = False,
        timeout: float | None = None,
    ) -> NewWebhook:
        """Has the servers POST to `url` when a job of `queue` (None: any queue) ends dead, and,
        when set, when a queue's oldest ready job waited longer than `oldest_job_age` or it holds
        `dead_jobs` dead jobs. The result's secret signs every delivery (shown only here)."""
        webhook = svc.Webhook(
            url=url, queue=queue or "", dead_jobs=dead_jobs, allow_private_network=allow_private_network
        )
        if oldest_job_age is not None:
            webhook.oldest_job_age.CopyFrom(convert.to_duration(oldest_job_age, "oldest_job_age"))
        response = await self._call(
            self._stub.CreateWebhook, svc.CreateWebhookRequest(webhook=webhook), timeout
        )
        return NewWebhook(response.secret, convert.webhook_info(response.webhook))

    async def list_webhooks(self, *, timeout: float | None = None) -> list[WebhookInfo]:
        """Every webhook, oldest first, without secrets."""
        response = await self._call(self._stub.ListWebhooks, svc.ListWebhooksRequest(), timeout)
        return [convert.webhook_info(w) for w in response.webhooks]

    async def delete_webhook(self, webhook_id: str, *, timeout: float | None = None) -> None:
        """Removes a webhook: no delivery to it starts after this returns."""
        await self._call(self._stub.DeleteWebhook, svc.DeleteWebhookRequest(id=webhook_id), timeout)

    async def watch(self, job_id: str, *, timeout: float | None = None) -> AsyncIterator[JobInfo]:
        """The job now, then again at each change of its state or progress, until it is
        COMPLETED, DEAD or CANCELLED (the last one yielded): WatchJob, a server stream.
        `timeout` bounds the whole watch (None: no bound)."""
        call = self._stub.WatchJob(svc.WatchJobRequest(job_id=job_id), timeout=timeout)
        try:
            async for response in call:
                yield convert.job_info(response.job)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error

    async def wait(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT_S) -> JobInfo:
        """Returns the job once it is COMPLETED, DEAD or CANCELLED; TimeoutError after `timeout`.

        It watches the job (WatchJob): the server says when it finishes. A stream that breaks
        (the server restarted, a proxy cut it), or a server without WatchJob, makes it poll
        GetStatus instead, starting at 10 ms and slowing to every 0.5 s; a server that is
        briefly unreachable does not end the wait. `timeout=None` waits for ever.
        """
        deadline = None if timeout is None else timing.monotonic() + timeout
        try:
            async for job in self.watch(job_id, timeout=timeout):
                if job.finished:
                    return job
        except DeadlineExceeded:
            raise TimeoutError(f"job {job_id} did not finish within {timeout} s") from None
        except (Unavailable, Unimplemented):
            pass  # polled below
        return await self._poll_until_finished(job_id, timeout, deadline)

    async def _poll_until_finished(
        self, job_id: str, timeout: float | None, deadline: float | None
    ) -> JobInfo:
        for interval in poll_intervals():
            try:
                job = await self.get(job_id, timeout=poll_timeout(self.timeout, deadline, timing.monotonic()))
                if job.finished:
                    return job
            except Unavailable:
                pass
            if deadline is not None and timing.monotonic() + interval > deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            await timing.async_sleep(interval)
        raise AssertionError("poll_intervals never ends")

    async def _call(
        self,
        method: grpc.aio.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        timeout: float | None,
        metadata: tracing.CallMetadata | None = None,
    ) -> ResponseT:
        try:
            return await method(
                request, timeout=self.timeout if timeout is None else timeout, metadata=metadata
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
