"""JobContext: what a handler knows about the job it runs and its lease."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from jobqueue import convert
from jobqueue.errors import InvalidArgument
from jobqueue.models import JobInfo
from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc

# The server's default lease, for a job whose lease length cannot be read off its grant.
DEFAULT_LEASE = timedelta(seconds=30)
# The server keeps progress messages and log lines up to this long.
MAX_TEXT_CHARS = 1024


class JobContext:
    """Passed to every handler with the payload; one per delivery (attempt) of a job.

    ``deadline`` is the server's lease expiry, moved forward each time the worker extends
    the lease while the handler runs. Pass ``lease_token`` to downstream systems that fence
    writes: a write tagged with a token that is no longer current can then be refused.

    A worker builds it from the delivered message and reads the rest of it (times, lease
    length, the full :attr:`job` view) only when something asks: most handlers never do,
    and reading it all would cost more than a no-op job itself.

    When the server stops the job (it was cancelled, or ran past its timeout), an ``async``
    handler's task is cancelled; a plain ``def`` handler cannot be interrupted and should
    check :attr:`stopped` in its loops. Either way its result is dropped. :meth:`progress`
    and :meth:`log` report to the server (``GetStatus``, ``jobq status``, ``watch``).
    """

    __slots__ = (
        "_deadline",
        "_done",
        "_extend_at",
        "_job",
        "_leased",
        "_length",
        "_logger",
        "_message",
        "_payload",
        "_report",
        "_task",
        "job_id",
        "lease_lost",
        "lease_token",
        "stop_reason",
        "worker_id",
    )

    def __init__(
        self,
        job: JobInfo,
        lease_token: str,
        deadline: datetime,
        lease_duration: timedelta,
        worker_id: str,
        lease_lost: bool = False,
    ) -> None:
        self._job: JobInfo | None = job
        self._leased: svc.LeasedJob | None = None
        self._message: job_pb2.Job | None = None
        self._payload: dict[str, Any] | None = job.payload
        self._deadline: datetime | None = deadline
        self._length: timedelta | None = lease_duration
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None
        self.job_id = job.id
        self.lease_token = lease_token
        self.worker_id = worker_id
        #: Set when the server refused an extension: another worker may now run the job, and
        #: this attempt's result will be dropped. Long handlers may check it and give up early.
        self.lease_lost = lease_lost
        #: Why the server stopped the job ("cancelled", "timed_out"), or None while it may run.
        self.stop_reason: str | None = None
        # The worker's own bookkeeping, not for handlers: the task running the handler, whether
        # the handler has returned, when the lease is next extended (loop time), and where
        # progress reports go (None: nowhere, outside a worker).
        self._report: Callable[[svc.ProgressUpdate], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self._extend_at = 0.0

    @classmethod
    def delivered(cls, leased: svc.LeasedJob, worker_id: str) -> JobContext:
        """A context over a delivered job; its other views are read on first use."""
        ctx = cls.__new__(cls)
        ctx._leased = leased
        ctx._message = message = leased.job
        ctx._job = ctx._payload = ctx._deadline = ctx._length = ctx._logger = ctx._task = None
        ctx._report = ctx.stop_reason = None
        ctx.job_id = message.id
        ctx.lease_token = leased.lease_token
        ctx.worker_id = worker_id
        ctx.lease_lost = ctx._done = False
        ctx._extend_at = 0.0
        return ctx

    @property
    def stopped(self) -> bool:
        """True once the server stopped the job: cancelled, or past its timeout (stop_reason)."""
        return self.stop_reason is not None

    def progress(self, percent: float, message: str = "") -> None:
        """Reports how far the job is (0 to 100) and what it does; sent with the worker's next
        message on the stream (no round trip waited for). Safe from any thread."""
        if not 0 <= percent <= 100:
            raise InvalidArgument(f"percent: must be from 0 to 100, got {percent}", field="percent")
        self._send(svc.ProgressUpdate(percent=percent, message=message[:MAX_TEXT_CHARS]))

    def log(self, line: str) -> None:
        """Appends a line to the job's log (the server keeps its last 100); safe from any thread."""
        self._send(svc.ProgressUpdate(logs=[line[:MAX_TEXT_CHARS]]))

    def _send(self, update: svc.ProgressUpdate) -> None:
        if self._report is None or self.stopped or self.lease_lost:
            return
        update.job_id = self.job_id
        update.lease_token = self.lease_token
        self._report(update)

    @property
    def job(self) -> JobInfo:
        """The job as the server delivered it (this attempt's state)."""
        if self._job is None:
            assert self._message is not None
            self._job = convert.job_info(self._message, payload=self.payload)
        return self._job

    @property
    def deadline(self) -> datetime:
        """When the lease expires unless extended (server clock, UTC)."""
        if self._deadline is None:
            assert self._leased is not None
            self._deadline = datetime.fromtimestamp(_ms(self._leased.lease_expire_time) / 1000, UTC)
        return self._deadline

    @deadline.setter
    def deadline(self, value: datetime) -> None:
        self._deadline = value

    @property
    def lease_duration(self) -> timedelta:
        """The lease length, used for every extension."""
        if self._length is None:
            assert self._leased is not None
            self._length = _lease_length(self._leased)
        return self._length

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger that tags every record with the job's id and queue."""
        if self._logger is None:
            base = logging.getLogger("jobqueue.job")
            self._logger = logging.LoggerAdapter(base, {"job_id": self.job_id, "queue": self.queue})
        return self._logger

    @property
    def queue(self) -> str:
        return self._message.queue if self._message is not None else self.job.queue

    @property
    def attempt(self) -> int:
        """This delivery's number, counted from 1."""
        return self._message.attempts if self._message is not None else self.job.attempts

    @property
    def max_attempts(self) -> int:
        return self._message.max_attempts if self._message is not None else self.job.max_attempts

    @property
    def is_last_attempt(self) -> bool:
        """True when a retryable failure now makes the job dead."""
        return self.attempt >= self.max_attempts

    @property
    def metadata(self) -> dict[str, str]:
        return self.job.metadata

    @property
    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            assert self._message is not None
            self._payload = convert.from_struct(self._message.payload)
        return self._payload

    @property
    def payload_bytes(self) -> bytes:
        return self._message.payload_bytes if self._message is not None else self.job.payload_bytes

    def __repr__(self) -> str:
        return f"JobContext(job_id={self.job_id!r}, attempt={self.attempt}, worker_id={self.worker_id!r})"


def _lease_length(leased: svc.LeasedJob) -> timedelta:
    # The grant's deadline minus its start time (both Redis's clock) is the lease length,
    # whether it came from the job, the stream or the server default.
    job = leased.job
    length_ms = _ms(leased.lease_expire_time) - _ms(job.start_time) if job.HasField("start_time") else 0
    if length_ms > 0:
        return timedelta(milliseconds=length_ms)
    if job.HasField("lease_duration"):
        return job.lease_duration.ToTimedelta()
    return DEFAULT_LEASE


def _ms(timestamp: timestamp_pb2.Timestamp) -> int:
    return timestamp.seconds * 1000 + timestamp.nanos // 1_000_000
