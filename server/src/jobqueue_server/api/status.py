"""The one table from domain errors to gRPC statuses, with google.rpc error details.

Each error carries an ErrorInfo whose reason is the name of a jobqueue.v1.ErrorReason value.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from jobqueue.v1.error_reason_pb2 import ErrorReason
from jobqueue_server.errors import (
    DependencyNotFound,
    DurabilityUnavailable,
    FieldViolation,
    FsyncNotConfirmed,
    InternalError,
    JobNotFound,
    JobQueueError,
    LeaseLost,
    QueueLimitReached,
    QueueNotAllowed,
    ReplicationNotConfirmed,
    RoleNotAllowed,
    ScheduleExists,
    ScheduleLimitReached,
    ScheduleNotFound,
    ServerDraining,
    StoreFull,
    StoreUnavailable,
    TokenExpired,
    TokenInvalid,
    TokenLimitReached,
    TokenMissing,
    TokenNotFound,
    WebhookLimitReached,
    WebhookNotFound,
    WrongState,
)

ERROR_DOMAIN = "jobqueue.dev"

# Looked up by the error's exact class: a subclass (FsyncNotConfirmed) has a row of its own.
_STATUSES: dict[type[JobQueueError], tuple[int, ErrorReason.ValueType]] = {
    FieldViolation: (code_pb2.INVALID_ARGUMENT, ErrorReason.INVALID_ARGUMENT),
    JobNotFound: (code_pb2.NOT_FOUND, ErrorReason.JOB_NOT_FOUND),
    DependencyNotFound: (code_pb2.NOT_FOUND, ErrorReason.JOB_NOT_FOUND),
    LeaseLost: (code_pb2.FAILED_PRECONDITION, ErrorReason.LEASE_LOST),
    WrongState: (code_pb2.FAILED_PRECONDITION, ErrorReason.WRONG_STATE),
    DurabilityUnavailable: (code_pb2.FAILED_PRECONDITION, ErrorReason.DURABILITY_UNAVAILABLE),
    FsyncNotConfirmed: (code_pb2.UNAVAILABLE, ErrorReason.FSYNC_NOT_CONFIRMED),
    ReplicationNotConfirmed: (code_pb2.UNAVAILABLE, ErrorReason.REPLICATION_NOT_CONFIRMED),
    StoreUnavailable: (code_pb2.UNAVAILABLE, ErrorReason.STORE_UNAVAILABLE),
    StoreFull: (code_pb2.RESOURCE_EXHAUSTED, ErrorReason.STORE_FULL),
    ServerDraining: (code_pb2.UNAVAILABLE, ErrorReason.SERVER_SHUTTING_DOWN),
    InternalError: (code_pb2.INTERNAL, ErrorReason.INTERNAL),
    TokenMissing: (code_pb2.UNAUTHENTICATED, ErrorReason.TOKEN_MISSING),
    TokenInvalid: (code_pb2.UNAUTHENTICATED, ErrorReason.TOKEN_INVALID),
    TokenExpired: (code_pb2.UNAUTHENTICATED, ErrorReason.TOKEN_EXPIRED),
    RoleNotAllowed: (code_pb2.PERMISSION_DENIED, ErrorReason.ROLE_NOT_ALLOWED),
    QueueNotAllowed: (code_pb2.PERMISSION_DENIED, ErrorReason.QUEUE_NOT_ALLOWED),
    TokenNotFound: (code_pb2.NOT_FOUND, ErrorReason.TOKEN_NOT_FOUND),
    TokenLimitReached: (code_pb2.RESOURCE_EXHAUSTED, ErrorReason.TOKEN_LIMIT_REACHED),
    QueueLimitReached: (code_pb2.RESOURCE_EXHAUSTED, ErrorReason.QUEUE_LIMIT_REACHED),
    ScheduleNotFound: (code_pb2.NOT_FOUND, ErrorReason.SCHEDULE_NOT_FOUND),
    ScheduleExists: (code_pb2.ALREADY_EXISTS, ErrorReason.SCHEDULE_EXISTS),
    ScheduleLimitReached: (code_pb2.RESOURCE_EXHAUSTED, ErrorReason.SCHEDULE_LIMIT_REACHED),
    WebhookNotFound: (code_pb2.NOT_FOUND, ErrorReason.WEBHOOK_NOT_FOUND),
    WebhookLimitReached: (code_pb2.RESOURCE_EXHAUSTED, ErrorReason.WEBHOOK_LIMIT_REACHED),
}
_UNMAPPED = (code_pb2.INTERNAL, ErrorReason.INTERNAL)

OK = status_pb2.Status(code=code_pb2.OK)


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def code_and_reason(error: JobQueueError) -> tuple[int, ErrorReason.ValueType]:
    """The google.rpc.Code and the ErrorReason a domain error is sent with."""
    return _STATUSES.get(type(error), _UNMAPPED)


def rpc_status_of(error: JobQueueError) -> status_pb2.Status:
    """The google.rpc.Status for an error: its code, message, ErrorInfo and any BadRequest."""
    code, reason = code_and_reason(error)
    info = error_details_pb2.ErrorInfo(reason=ErrorReason.Name(reason), domain=ERROR_DOMAIN)
    details = [_pack(info)]
    if isinstance(error, FieldViolation):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[violation])))
    return status_pb2.Status(code=code, message=error.message, details=details)


ServicerT = TypeVar("ServicerT")
RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")


def maps_errors(
    method: Callable[[ServicerT, RequestT, grpc.aio.ServicerContext[Any, Any]], Awaitable[ResponseT]],
) -> Callable[[ServicerT, RequestT, grpc.aio.ServicerContext[Any, Any]], Awaitable[ResponseT]]:
    """Ends a unary call with the mapped status when the method raises a domain error."""

    @functools.wraps(method)
    async def wrapper(
        self: ServicerT, request: RequestT, context: grpc.aio.ServicerContext[Any, Any]
    ) -> ResponseT:
        try:
            return await method(self, request, context)
        except JobQueueError as error:
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))
            raise AssertionError("abort_with_status returns only by raising") from error

    return wrapper
