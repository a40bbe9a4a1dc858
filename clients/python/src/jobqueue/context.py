"""JobContext: what a handler knows about the job it runs and its lease."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobqueue.models import JobInfo


@dataclass(eq=False)
class JobContext:
    """Passed to every handler with the payload; one per delivery (attempt) of a job.

    ``deadline`` is the server's lease expiry, moved forward each time the worker extends
    the lease while the handler runs. Pass ``lease_token`` to downstream systems that fence
    writes: a write tagged with a token that is no longer current can then be refused.
    """

    job: JobInfo
    lease_token: str
    #: When the lease expires unless extended (server clock, UTC).
    deadline: datetime
    #: The lease length, used for every extension.
    lease_duration: timedelta
    worker_id: str
    #: Set when the server refused an extension: another worker may now run the job, and
    #: this attempt's result will be dropped. Long handlers may check it and give up early.
    lease_lost: bool = False
    logger: logging.LoggerAdapter[logging.Logger] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base = logging.getLogger("jobqueue.job")
        self.logger = logging.LoggerAdapter(base, {"job_id": self.job.id, "queue": self.job.queue})

    @property
    def job_id(self) -> str:
        return self.job.id

    @property
    def queue(self) -> str:
        return self.job.queue

    @property
    def attempt(self) -> int:
        """This delivery's number, counted from 1."""
        return self.job.attempts

    @property
    def max_attempts(self) -> int:
        return self.job.max_attempts

    @property
    def is_last_attempt(self) -> bool:
        """True when a retryable failure now makes the job dead."""
        return self.job.attempts >= self.job.max_attempts

    @property
    def metadata(self) -> dict[str, str]:
        return self.job.metadata

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    @property
    def payload_bytes(self) -> bytes:
        return self.job.payload_bytes
