"""Typed errors raised by the jobqueue client, built from the server's status details.

Every error the server sends carries a ``google.rpc.ErrorInfo`` whose ``reason`` names a
value of the contract's ``ErrorReason`` enum; :func:`from_rpc_error` turns a failed call
(sync ``grpc`` or ``grpc.aio``) into the class of that value, so callers never parse
message text. A status without one (made by gRPC itself, a proxy, or a newer server with a
reason this library does not know) maps to the class of its status code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import ClassVar

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

from jobqueue.v1.error_reason_pb2 import ErrorReason

ERROR_DOMAIN = "jobqueue.dev"
# The trailer in which gRPC carries the serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"
_UNSPECIFIED = ErrorReason.ERROR_REASON_UNSPECIFIED


class JobQueueError(Exception):
    """Base class of every error this library raises for a refused or failed call."""

    #: The ErrorReason this class stands for; UNSPECIFIED for a class chosen by status code.
    error_reason: ClassVar[ErrorReason.ValueType] = _UNSPECIFIED
    #: The status code the server sends with it (for a code-level class: the code itself).
    default_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN
    #: Whether the same call may succeed when tried again later (see each class).
    retryable: ClassVar[bool] = False

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
        #: The ErrorInfo reason as sent (an ErrorReason name, e.g. ``LEASE_LOST``); without
        #: one, the status code's name (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ...).
        self.reason = reason or self.default_reason()
        #: The gRPC status code of the failed call.
        self.code = code or self.default_code

    @classmethod
    def default_reason(cls) -> str:
        if cls.error_reason != _UNSPECIFIED:
            return ErrorReason.Name(cls.error_reason)
        return cls.default_code.name


# -- one class per status code, for statuses without an ErrorInfo ----------------------


class FailedPrecondition(JobQueueError):
    """The job or the store is not in a state that allows the call; nothing was changed."""

    default_code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(JobQueueError):
    """A limit was reached (a message over gRPC's size limit, Redis memory, ...)."""

    default_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unimplemented(JobQueueError):
    """The server does not have this method (an older version)."""

    default_code = grpc.StatusCode.UNIMPLEMENTED


class AlreadyExists(JobQueueError):
    """What the call would create exists already; nothing was changed."""

    default_code = grpc.StatusCode.ALREADY_EXISTS


class Unavailable(JobQueueError):
    """The server or its Redis could not be reached; the call may be retried."""

    default_code = grpc.StatusCode.UNAVAILABLE
    retryable = True


class DeadlineExceeded(Unavailable):
    """The call did not finish within its timeout; it may or may not have taken effect."""

    default_code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(JobQueueError):
    """The call carried no valid credentials."""

    default_code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(JobQueueError):
    """The credentials do not allow the call."""

    default_code = grpc.StatusCode.PERMISSION_DENIED


# -- one class per ErrorReason (see proto/jobqueue/v1/error_reason.proto) ----------------


class InvalidArgument(JobQueueError, ValueError):
    """A request field breaks a rule (``field`` names it); nothing was changed. Fix the request.

    Raised by the server, or by the client before sending (a naive datetime, a payload that
    is not JSON); it is also a ValueError.
    """

    error_reason = ErrorReason.INVALID_ARGUMENT
    default_code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(JobQueueError):
    """The job does not exist (never did, or its retention window passed)."""

    error_reason = ErrorReason.JOB_NOT_FOUND
    default_code = grpc.StatusCode.NOT_FOUND


class LeaseLost(FailedPrecondition):
    """The lease token is no longer current: the lease expired or was settled already."""

    error_reason = ErrorReason.LEASE_LOST


class WrongState(FailedPrecondition):
    """The job's state does not allow the call (cancel a completed job, ...); read its status."""

    error_reason = ErrorReason.WRONG_STATE


class DurabilityUnavailable(FailedPrecondition):
    """``durability="fsynced"`` (or "replicated") was asked for, or is the server's default, but
    Redis cannot confirm writes on disk (or has too few replicas); nothing was written. Use
    "applied", or ask the operator."""

    error_reason = ErrorReason.DURABILITY_UNAVAILABLE


class FsyncNotConfirmed(Unavailable):
    """A fsynced write was applied but not confirmed on disk in time: it stands, and may not
    survive a power loss. A retry finds it (the same job, given an idempotency key)."""

    error_reason = ErrorReason.FSYNC_NOT_CONFIRMED


class ReplicationNotConfirmed(Unavailable):
    """A replicated write was applied on the primary but too few replicas confirmed it in time:
    it stands, and a failover now may lose it. A retry finds it (given an idempotency key)."""

    error_reason = ErrorReason.REPLICATION_NOT_CONFIRMED


class StoreUnavailable(Unavailable):
    """Redis could not be reached or did not answer in time; the write may or may not have
    happened. Retry with backoff (an enqueue only with an idempotency key)."""

    error_reason = ErrorReason.STORE_UNAVAILABLE


class StoreFull(ResourceExhausted):
    """Redis is out of memory and refused the write; nothing was written. Retry with backoff."""

    error_reason = ErrorReason.STORE_FULL
    retryable = True


class ServerShuttingDown(Unavailable):
    """The server is shutting down; reconnect with backoff, to another server if there is one."""

    error_reason = ErrorReason.SERVER_SHUTTING_DOWN


class Internal(JobQueueError):
    """The server met a state it does not understand; nothing is known about the write."""

    error_reason = ErrorReason.INTERNAL
    default_code = grpc.StatusCode.INTERNAL


class TokenMissing(Unauthenticated):
    """The server requires a token and the call carried none (set ``token`` or JOBQ_TOKEN)."""

    error_reason = ErrorReason.TOKEN_MISSING


class TokenInvalid(Unauthenticated):
    """The token is malformed, was never issued, or was revoked. Do not retry with it."""

    error_reason = ErrorReason.TOKEN_INVALID


class TokenExpired(Unauthenticated):
    """The token's expiry passed. Get a new one."""

    error_reason = ErrorReason.TOKEN_EXPIRED


class RoleNotAllowed(PermissionDenied):
    """The token's role may not call this method (docs/security.md)."""

    error_reason = ErrorReason.ROLE_NOT_ALLOWED


class QueueNotAllowed(PermissionDenied):
    """The request names a queue outside the token's patterns (``field`` says where)."""

    error_reason = ErrorReason.QUEUE_NOT_ALLOWED


class TokenNotFound(NotFound):
    """RevokeToken named a token id that does not exist."""

    error_reason = ErrorReason.TOKEN_NOT_FOUND


class TokenLimitReached(ResourceExhausted):
    """CreateToken was refused: as many tokens exist as the server allows. Revoke some."""

    error_reason = ErrorReason.TOKEN_LIMIT_REACHED


class QueueLimitReached(ResourceExhausted):
    """The request would create a queue past the server's ``max_queues``; nothing was written."""

    error_reason = ErrorReason.QUEUE_LIMIT_REACHED


class ScheduleNotFound(NotFound):
    """No schedule has the name given (never created, or deleted)."""

    error_reason = ErrorReason.SCHEDULE_NOT_FOUND


class ScheduleExists(AlreadyExists):
    """CreateSchedule named a schedule that exists: update it, or pick another name."""

    error_reason = ErrorReason.SCHEDULE_EXISTS


class ScheduleLimitReached(ResourceExhausted):
    """CreateSchedule was refused: ``max_schedules`` exist already. Delete unused ones."""

    error_reason = ErrorReason.SCHEDULE_LIMIT_REACHED


class WebhookNotFound(NotFound):
    """No webhook has the id given (never created, or deleted)."""

    error_reason = ErrorReason.WEBHOOK_NOT_FOUND


class WebhookLimitReached(ResourceExhausted):
    """CreateWebhook was refused: 100 webhooks exist already. Delete unused ones."""

    error_reason = ErrorReason.WEBHOOK_LIMIT_REACHED


# -- raised by job handlers -------------------------------------------------------------


class NonRetryableError(Exception):
    """Raised by a job handler to fail the job at once, whatever attempts are left."""


class RetryAfter(Exception):
    """Raised by a job handler to fail this attempt and retry after `delay`, not the backoff."""

    def __init__(self, message: str, delay: timedelta | float) -> None:
        super().__init__(message)
        self.delay = delay if isinstance(delay, timedelta) else timedelta(seconds=delay)


# -- mapping ----------------------------------------------------------------------------

_REASON_CLASSES: tuple[type[JobQueueError], ...] = (
    InvalidArgument, NotFound, LeaseLost, WrongState, DurabilityUnavailable, FsyncNotConfirmed,
    StoreUnavailable, StoreFull, ServerShuttingDown, Internal, TokenMissing, TokenInvalid, TokenExpired,
    RoleNotAllowed, QueueNotAllowed, TokenNotFound, TokenLimitReached, QueueLimitReached,
    ScheduleNotFound, ScheduleExists, ScheduleLimitReached, WebhookNotFound, WebhookLimitReached,
    ReplicationNotConfirmed,
)  # fmt: skip
BY_REASON: dict[ErrorReason.ValueType, type[JobQueueError]] = {c.error_reason: c for c in _REASON_CLASSES}
BY_CODE: dict[grpc.StatusCode, type[JobQueueError]] = {
    cls.default_code: cls
    for cls in (
        InvalidArgument, NotFound, FailedPrecondition, ResourceExhausted, Unavailable, DeadlineExceeded,
        Unauthenticated, PermissionDenied, Internal, AlreadyExists, Unimplemented,
    )
}  # fmt: skip
_CODE_BY_NUMBER: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


def error_class(reason: str | None, code: grpc.StatusCode) -> type[JobQueueError]:
    """The class of an ErrorInfo reason (a value name), else of the status code."""
    try:
        return BY_REASON[ErrorReason.Value(reason or "")]
    except (ValueError, KeyError):  # a reason this version does not know, or UNSPECIFIED
        return BY_CODE.get(code, JobQueueError)


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
    return error_class(reason, code)(message, field=field, reason=reason, code=code)


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
    """(ErrorInfo reason of our domain, first BadRequest field) from a status's details."""
    reason: str | None = None
    field: str | None = None
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):  # Unpack is False when the detail is another type
            # A proxy's or another service's reason is not one of ours, even when the names match.
            reason = info.reason if info.domain == ERROR_DOMAIN else reason
        elif detail.Unpack(bad) and bad.field_violations:
            field = bad.field_violations[0].field
    return reason, field
