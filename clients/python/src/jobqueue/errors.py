"""Typed errors raised by the jobqueue client, built from the server's status details.

Every error the server sends carries a ``google.rpc.ErrorInfo`` whose ``reason`` is one of
the stable UPPER_SNAKE strings below; :func:`from_rpc_error` turns a ``grpc.RpcError`` into
the matching class, so callers never parse message text.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "jobqueue.dev"


class JobQueueError(Exception):
    """Base class of every error this library raises."""

    reason = "UNKNOWN"
    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: The request field at fault, for InvalidArgument (dotted path, e.g. ``requests[2].queue``).
        self.field = field


class InvalidArgument(JobQueueError):
    """A request field was malformed or out of range; nothing was changed."""

    reason = "INVALID_ARGUMENT"
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(JobQueueError):
    """The job does not exist (never did, or its retention window passed)."""

    reason = "JOB_NOT_FOUND"
    code = grpc.StatusCode.NOT_FOUND


class LeaseLost(JobQueueError):
    """The lease token is no longer current: the lease expired or was settled already."""

    reason = "LEASE_LOST"
    code = grpc.StatusCode.FAILED_PRECONDITION


class WrongState(JobQueueError):
    """The job is not in a state that allows the call (cancel a completed job, ...)."""

    reason = "WRONG_STATE"
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(JobQueueError):
    """A limit was reached: payload or batch size, in-flight window, Redis memory."""

    reason = "RESOURCE_EXHAUSTED"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(JobQueueError):
    """The server or its Redis could not be reached; the call may be retried."""

    reason = "UNAVAILABLE"
    code = grpc.StatusCode.UNAVAILABLE


class NonRetryableError(Exception):
    """Raised by a job handler to fail the job at once, whatever attempts are left."""


_BY_REASON: dict[str, type[JobQueueError]] = {
    cls.reason: cls for cls in (InvalidArgument, NotFound, LeaseLost, WrongState, ResourceExhausted, Unavailable)
}
_BY_CODE: dict[grpc.StatusCode, type[JobQueueError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: WrongState,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def from_rpc_error(error: grpc.RpcError) -> JobQueueError:
    """Map a failed call to the typed error its status details describe."""
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    message = error.details() if isinstance(error, grpc.Call) else str(error)
    reason, field = None, None
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad) and bad.field_violations:
            field = bad.field_violations[0].field
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    cls = _BY_REASON.get(reason or "") or _BY_CODE.get(code, JobQueueError)
    return cls(message or "", field=field)
