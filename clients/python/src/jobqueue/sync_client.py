"""Client: the blocking producer API, on a plain grpc channel (no event loop, no threads)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from jobqueue import convert, messages
from jobqueue.backoff import poll_intervals, poll_timeout
from jobqueue.channel import ChannelOption, sync_channel
from jobqueue.errors import InvalidArgument, Unavailable, from_rpc_error
from jobqueue.messages import DEFAULT_TIMEOUT_S, DEFAULT_WAIT_S
from jobqueue.models import (
    BackoffPolicy,
    DurabilityName,
    EnqueueResult,
    JobInfo,
    JobSpec,
    JobState,
    Priority,
    PriorityName,
    QueueStats,
)
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


class Client:
    """Blocking producer client; the same methods as :class:`jobqueue.AsyncClient`.

    Give a target ("localhost:50051") to let the client own its channel (closed by
    ``close()`` or ``with``), or an existing ``grpc.Channel`` to share one. Every call
    takes an optional ``timeout`` in seconds (default: the client's, 10 s) and raises a
    :mod:`jobqueue.errors` class when it fails. Calls are not retried.
    """

    def __init__(
        self,
        target: str | grpc.Channel,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[ChannelOption] = (),
    ) -> None:
        self._owns_channel = isinstance(target, str)
        self._channel = sync_channel(target, credentials, options) if isinstance(target, str) else target
        self._stub = svc_grpc.JobQueueServiceStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel if the client created it."""
        if self._owns_channel:
            self._channel.close()

    def enqueue(
        self,
        queue: str,
        payload: Mapping[str, Any] | bytes | None = None,
        *,
        priority: PriorityName = Priority.NORMAL,
        delay: timedelta | float | None = None,
        run_at: datetime | None = None,
        max_attempts: int | None = None,
        idempotency_key: str | None = None,
        lease_duration: timedelta | float | None = None,
        metadata: Mapping[str, str] | None = None,
        backoff: BackoffPolicy | None = None,
        durability: DurabilityName | None = None,
        timeout: float | None = None,
    ) -> EnqueueResult:
        """Adds one job; `delay` (seconds or timedelta) or `run_at` (aware datetime) defers it.

        `durability` "fsynced" returns only once Redis has the job on disk (docs/durability.md).
        """
        spec = JobSpec(
            queue=queue, payload=payload, priority=priority, delay=delay, run_at=run_at,
            max_attempts=max_attempts, idempotency_key=idempotency_key, lease_duration=lease_duration,
            metadata=metadata, backoff=backoff, durability=durability,
        )  # fmt: skip
        response = self._call(self._stub.Enqueue, messages.enqueue_request(spec), timeout)
        return messages.enqueue_result(response)

    def enqueue_many(
        self,
        jobs: Sequence[JobSpec | Mapping[str, Any]],
        *,
        durability: DurabilityName | None = None,
        timeout: float | None = None,
    ) -> list[EnqueueResult]:
        """Adds many jobs with EnqueueBatch, 1,000 per call; results come in the order given.

        Each call is all-or-nothing; when a later call fails, the jobs of earlier calls stay.
        """
        level = convert.to_durability(durability)
        results: list[EnqueueResult] = []
        for batch in messages.batches(messages.batch_requests(jobs)):
            request = svc.EnqueueBatchRequest(requests=batch, durability=level)
            try:
                response = self._call(self._stub.EnqueueBatch, request, timeout)
            except InvalidArgument as error:
                raise messages.shift_field(error, len(results)) from error
            results += [messages.enqueue_result(r) for r in response.responses]
        return results

    def get(self, job_id: str, *, timeout: float | None = None) -> JobInfo:
        """The job as stored now; raises NotFound when it does not exist."""
        response = self._call(self._stub.GetStatus, svc.GetStatusRequest(job_id=job_id), timeout)
        return convert.job_info(response.job)

    def stats(self, queue: str | None = None, *, timeout: float | None = None) -> list[QueueStats]:
        """Counts by state for one queue, or for every known queue (sorted by name)."""
        response = self._call(self._stub.Stats, svc.StatsRequest(queue=queue or ""), timeout)
        return [convert.queue_stats(s) for s in response.queues]

    def list_jobs(
        self, queue: str, state: JobState | str, *, page_size: int = 100, timeout: float | None = None
    ) -> Iterator[JobInfo]:
        """Every job of `queue` in `state`, fetched a page at a time: queued ones in lease
        order, scheduled by due time, active by deadline, finished ones newest first."""
        token = ""
        while True:
            request = messages.list_request(queue, state, page_size, token)
            page = self._call(self._stub.ListJobs, request, timeout)
            yield from (convert.job_info(job) for job in page.jobs)
            token = page.next_page_token
            if not token:
                return

    def cancel(self, job_id: str, *, timeout: float | None = None) -> None:
        """Stops a scheduled or queued job from running; WrongState once it was leased."""
        self._call(self._stub.Cancel, svc.CancelRequest(job_id=job_id), timeout)

    def retry(self, job_id: str, *, timeout: float | None = None) -> None:
        """Sends a dead or cancelled job back to its queue with its attempts reset."""
        self._call(self._stub.Retry, svc.RetryRequest(job_id=job_id), timeout)

    def wait(self, job_id: str, *, timeout: float | None = DEFAULT_WAIT_S) -> JobInfo:
        """Returns the job once it is COMPLETED, DEAD or CANCELLED; TimeoutError after `timeout`.

        The server has no push for job completion, so this polls GetStatus, starting at
        10 ms and slowing to every 0.5 s. A server that is briefly unreachable (Unavailable)
        does not end the wait. `timeout=None` waits for ever.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for interval in poll_intervals():
            try:
                job = self.get(job_id, timeout=poll_timeout(self.timeout, deadline, time.monotonic()))
                if job.finished:
                    return job
            except Unavailable:
                pass
            if deadline is not None and time.monotonic() + interval > deadline:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            time.sleep(interval)
        raise AssertionError("poll_intervals never ends")

    def _call(
        self,
        method: grpc.UnaryUnaryMultiCallable[RequestT, ResponseT],
        request: RequestT,
        timeout: float | None,
    ) -> ResponseT:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from error
