"""Domain errors, free of gRPC: the api layer maps each to a status code and an ErrorReason
of the contract in one table (api/status.py)."""

from __future__ import annotations


class JobQueueError(Exception):
    """Base of every domain error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JobNotFound(JobQueueError):
    """No job has this id: it never existed, or its retention window passed."""


class LeaseLost(JobQueueError):
    """The lease token is not current: expired and requeued, settled, or never issued."""


class WrongState(JobQueueError):
    """The job's state does not allow the operation."""


class FieldViolation(JobQueueError):
    """One request field is invalid."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class DependencyNotFound(FieldViolation):
    """A job named in `depends_on` does not exist (the field says which)."""


class ServerDraining(JobQueueError):
    """This server is shutting down and takes no new streams; another server can."""


class StoreUnavailable(JobQueueError):
    """Redis could not be reached or did not answer in time."""


class StoreFull(JobQueueError):
    """Redis refused a write because it is out of memory."""


class DurabilityUnavailable(JobQueueError):
    """DURABILITY_FSYNCED was asked for, but this Redis cannot confirm writes on disk
    (its append-only file is off, or it has no WAITAOF). Nothing was written."""


class ReplicationNotConfirmed(StoreUnavailable):
    """Redis applied a DURABILITY_REPLICATED write but too few replicas confirmed it in time.

    The write happened (a retry finds it), but a failover now may lose it.
    """


class FsyncNotConfirmed(StoreUnavailable):
    """Redis applied a DURABILITY_FSYNCED write but did not confirm it on disk in time.

    The write happened (a retry finds it: a duplicate enqueue, a lost lease), but may not
    survive a power loss; a slow or failing disk is the usual cause.
    """


class InternalError(JobQueueError):
    """The server broke its own contract with the store: a script answered with a code or a
    shape this server does not know, or was called with the wrong keys. Never taken for a
    success: the store fails closed."""


class TokenMissing(JobQueueError):
    """The server requires a bearer token and the call carried none."""


class TokenInvalid(JobQueueError):
    """The bearer token is malformed, was never issued, or was revoked."""


class TokenExpired(JobQueueError):
    """The bearer token's expiry time has passed."""


class RoleNotAllowed(JobQueueError):
    """The token's role may not call this method."""


class QueueNotAllowed(FieldViolation):
    """The request names a queue outside the token's queue patterns (the field says where)."""


class TokenNotFound(JobQueueError):
    """No token has this id (never issued, or revoked already)."""


class TokenLimitReached(JobQueueError):
    """As many tokens exist as a server keeps in memory."""


class QueueLimitReached(JobQueueError):
    """Registering the request's queues would pass `max_queues`; nothing was written."""


class ScheduleNotFound(JobQueueError):
    """No schedule has this name (never created, or deleted)."""


class ScheduleExists(JobQueueError):
    """CreateSchedule named a schedule that exists."""


class WebhookNotFound(JobQueueError):
    """No webhook has this id."""


class WebhookLimitReached(JobQueueError):
    """CreateWebhook would make one webhook too many."""


class ScheduleLimitReached(JobQueueError):
    """As many schedules exist as `max_schedules` allows; nothing was written."""
