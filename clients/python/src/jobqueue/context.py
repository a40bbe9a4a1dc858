"""JobContext: what a handler knows about the job it runs and its lease."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue import convert
from jobqueue.models import JobInfo
from jobqueue.v1 import job_pb2


class JobContext:
    """Passed to every handler with the payload; one per delivery (attempt) of a job.

    ``deadline`` is the server's lease expiry, moved forward each time the worker extends
    the lease while the handler runs. Pass ``lease_token`` to downstream systems that fence
    writes: a write tagged with a token that is no longer current can then be refused.

    A worker builds it from the delivered message and converts the full :attr:`job` view
    (times, policies, history) only when a handler reads it: most never do, and the
    conversion would otherwise cost more than a no-op job itself.
    """

    __slots__ = (
        "_deadline",
        "_deadline_ms",
        "_job",
        "_logger",
        "_message",
        "_payload",
        "lease_duration",
        "lease_lost",
        "lease_token",
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
        self._message: job_pb2.Job | None = None
        self._payload: dict[str, Any] | None = job.payload
        self._deadline: datetime | None = deadline
        self._deadline_ms = 0
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None
        self.lease_token = lease_token
        #: The lease length, used for every extension.
        self.lease_duration = lease_duration
        self.worker_id = worker_id
        #: Set when the server refused an extension: another worker may now run the job, and
        #: this attempt's result will be dropped. Long handlers may check it and give up early.
        self.lease_lost = lease_lost

    @classmethod
    def from_message(
        cls,
        message: job_pb2.Job,
        lease_token: str,
        deadline_ms: int,
        lease_duration: timedelta,
        worker_id: str,
    ) -> JobContext:
        """A context over a delivered Job message; its typed views are built on first use."""
        ctx = cls.__new__(cls)
        ctx._job = None
        ctx._message = message
        ctx._payload = None
        ctx._deadline = None
        ctx._deadline_ms = deadline_ms
        ctx._logger = None
        ctx.lease_token = lease_token
        ctx.lease_duration = lease_duration
        ctx.worker_id = worker_id
        ctx.lease_lost = False
        return ctx

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
            self._deadline = datetime.fromtimestamp(self._deadline_ms / 1000, UTC)
        return self._deadline

    @deadline.setter
    def deadline(self, value: datetime) -> None:
        self._deadline = value

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger that tags every record with the job's id and queue."""
        if self._logger is None:
            base = logging.getLogger("jobqueue.job")
            self._logger = logging.LoggerAdapter(base, {"job_id": self.job_id, "queue": self.queue})
        return self._logger

    @property
    def job_id(self) -> str:
        return self._message.id if self._message is not None else self.job.id

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
