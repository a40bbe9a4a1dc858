"""Typed errors raised by the jobqueue client, built from the server's status details.

Every error the server sends carries a ``google.rpc.ErrorInfo`` whose ``reason`` is a
stable UPPER_SNAKE string; :func:`from_rpc_error` turns a failed call (sync ``grpc`` or
``grpc.aio``) into the matching class, so callers never parse message text.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "jobqueue.dev"
# The trailer in which gRPC carries the serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class JobQueueError(Exception):
    """Base class of every error this library raises for a refused or failed call."""

    #: The default reason and code of the class; instances carry what the server sent.
    default_reason = "UNKNOWN"
    default_code = grpc.StatusCode.UNKNOWN
    #: Whether the same call may succeed when tried again later.
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        code: grpc.StatusCode | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The request field at fault, for InvalidArgument (dotted path, e.g. ``requests[2].queue``).
        self.field = field
        #: The stable ErrorInfo reason, e.g. ``LEASE_LOST``.
        self.reason = reason or self.default_reason
        #: The gRPC status code of the failed call.
        self.code = code or self.default_code


class InvalidArgument(JobQueueError, ValueError):
    """A request field was malformed or out of range; nothing was changed.

    Raised by the server, or by the client before sending (a naive datetime, a payload that
    is not JSON); it is also a ValueError.
    """

    default_reason = "INVALID_ARGUMENT"
    default_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(JobQueueError):
    """The job does not exist (never did, or its retention window passed)."""

    default_reason = "JOB_NOT_FOUND"
    default_code = grpc.StatusCode.NOT_FOUND


class LeaseLost(JobQueueError):
    """The lease token is no longer current: the lease expired or was settled already."""

    default_reason = "LEASE_LOST"
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class WrongState(JobQueueError):
    """The job is not in a state that allows the call (cancel a completed job, ...)."""

    default_reason = "WRONG_STATE"
    default_code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(JobQueueError):
    """A limit was reached: payload or batch size, in-flight window, Redis memory."""

    default_reason = "RESOURCE_EXHAUSTED"
    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(JobQueueError):
    """The server or its Redis could not be reached; the call may be retried."""

    default_reason = "UNAVAILABLE"
    default_code = grpc.StatusCode.UNAVAILABLE
    retryable = True


class DeadlineExceeded(Unavailable):
    """The call did not finish within its timeout; it may or may not have taken effect."""

    default_reason = "DEADLINE_EXCEEDED"
    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(JobQueueError):
    """The call carried no valid credentials."""

    default_reason = "UNAUTHENTICATED"
    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(JobQueueError):
    """The credentials do not allow the call."""

    default_reason = "PERMISSION_DENIED"
    default_code = grpc.StatusCode.PERMISSION_DENIED


class NonRetryableError(Exception):
    """Raised by a job handler to fail the job at once, whatever attempts are left."""


class RetryAfter(Exception):
    """Raised by a job handler to fail this attempt and retry after `delay`, not the backoff."""

    def __init__(self, message: str, delay: timedelta | float) -> None:
        super().__init__(message)
        self.delay = delay if isinstance(delay, timedelta) else timedelta(seconds=delay)


# Server reasons that do not share their class's default name.
_BY_REASON: dict[str, type[JobQueueError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "JOB_NOT_FOUND": NotFound,
    "LEASE_LOST": LeaseLost,
    "WRONG_STATE": WrongState,
    "STORE_UNAVAILABLE": Unavailable,
    "STORE_FULL": ResourceExhausted,
}
# The fallback when a status has no ErrorInfo (errors made by gRPC itself, proxies, ...).
_BY_CODE: dict[grpc.StatusCode, type[JobQueueError]] = {
    cls.default_code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Unauthenticated,
        PermissionDenied,
    )
} | {grpc.StatusCode.FAILED_PRECONDITION: WrongState}
_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def from_status(status: status_pb2.Status) -> JobQueueError | None:
    """The typed error a google.rpc.Status describes (a Confirmation's), or None when OK."""
    if status.code == code_pb2.OK:
        return None
    code = _CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
    return _build(code, status.message, status)


def from_rpc_error(error: grpc.RpcError) -> JobQueueError:
    """Map a failed call (a sync ``grpc.Call`` or a ``grpc.aio.AioRpcError``) to its typed error."""
    code = _call_attr(error, "code")
    details = _call_attr(error, "details")
    code = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
    message = details if isinstance(details, str) else str(error)
    return _build(code, message, _status_from_trailers(error))


def _build(code: grpc.StatusCode, message: str, status: status_pb2.Status | None) -> JobQueueError:
    reason, field = _parse_details(status)
    cls = _BY_REASON.get(reason or "") or _BY_CODE.get(code, JobQueueError)
    return cls(message, field=field, reason=reason, code=code)


def _call_attr(error: grpc.RpcError, name: str) -> object:
    # grpc.RpcError itself has no accessors: the sync Call and AioRpcError both add them.
    method = getattr(error, name, None)
    return method() if callable(method) else None


def _status_from_trailers(error: grpc.RpcError) -> status_pb2.Status | None:
    """Parses ``grpc-status-details-bin`` by hand: grpc_status.from_call rejects aio errors."""
    trailers = _call_attr(error, "trailing_metadata")  # a tuple of pairs, or aio Metadata
    if not isinstance(trailers, Iterable):
        return None
    for item in trailers:
        if isinstance(item, tuple) and item[0] == STATUS_DETAILS_KEY and isinstance(item[1], bytes):
            return status_pb2.Status.FromString(item[1])
    return None


def _parse_details(status: status_pb2.Status | None) -> tuple[str | None, str | None]:
    """(ErrorInfo reason, first BadRequest field) from a status's details."""
    reason: str | None = None
    field: str | None = None
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):  # Unpack is False when the detail is another type
            reason = info.reason
        elif detail.Unpack(bad) and bad.field_violations:
            field = bad.field_violations[0].field
    return reason, field
