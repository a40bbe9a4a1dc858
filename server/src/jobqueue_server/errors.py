"""Domain errors, free of gRPC: the api layer maps each to a status in one table.

Each class has a stable UPPER_SNAKE ``reason`` that clients see in google.rpc.ErrorInfo.
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Base of every domain error."""

    reason = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobNotFound(JobQueueError):
    reason = "JOB_NOT_FOUND"


class LeaseLost(JobQueueError):
    """The lease token is not current: expired and requeued, settled, or never issued."""

    reason = "LEASE_LOST"


class WrongState(JobQueueError):
    """The job's state does not allow the operation."""

    reason = "WRONG_STATE"


class FieldViolation(JobQueueError):
    """One request field is invalid."""

    reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ServerDraining(JobQueueError):
    """This server is shutting down and takes no new streams; another server can."""

    reason = "SERVER_SHUTTING_DOWN"


class StoreUnavailable(JobQueueError):
    """Redis could not be reached or did not answer in time."""

    reason = "REDIS_UNAVAILABLE"


class StoreFull(JobQueueError):
    """Redis refused a write because it is out of memory."""

    reason = "REDIS_OUT_OF_MEMORY"


class DurabilityUnavailable(JobQueueError):
    """DURABILITY_FSYNCED was asked for, but this Redis cannot confirm writes on disk
    (its append-only file is off, or it has no WAITAOF). Nothing was written."""

    reason = "DURABILITY_UNAVAILABLE"


class FsyncNotConfirmed(StoreUnavailable):
    """Redis applied a DURABILITY_FSYNCED write but did not confirm it on disk in time.

    The write happened (a retry finds it: a duplicate enqueue, a lost lease), but may not
    survive a power loss; a slow or failing disk is the usual cause.
    """

    reason = "FSYNC_NOT_CONFIRMED"
