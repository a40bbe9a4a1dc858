"""WorkerCounters: what a worker has done so far, for logs, health checks and tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WorkerCounters:
    """Monotonic counts since the worker started (only the event loop thread writes them)."""

    #: Lease streams opened, counting attempts that failed at once.
    connections: int = 0
    #: Jobs delivered to this worker, including ones it did not start because it was stopping.
    received: int = 0
    #: Acks the server confirmed: jobs completed by this worker.
    succeeded: int = 0
    #: Fails the server confirmed: attempts that raised (the job retries later or is dead).
    failed: int = 0
    #: Acks and fails the server refused (lease lost, job gone, result too large).
    rejected: int = 0
    #: Acks and fails sent again because the server could not reach Redis (UNAVAILABLE).
    resent: int = 0
    #: Jobs whose handler was cancelled or whose result was dropped: the stream ended, the
    #: grace period ran out, or the lease was lost. The server gives these to a worker again.
    abandoned: int = 0
    #: Jobs the server stopped while their handler ran: cancelled, or past their timeout.
    stopped: int = 0

    @property
    def processed(self) -> int:
        """Jobs settled with the server, successfully or not."""
        return self.succeeded + self.failed
