"""Typed errors from the contract's ErrorReason enum: one class per value, parsed from status details."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, descriptor_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

import jobqueue
import jobqueue.v1
from jobqueue import (
    DurabilityUnavailable,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    JobQueueError,
    LeaseLost,
    ResourceExhausted,
    Unavailable,
    WrongState,
)
from jobqueue.errors import BY_REASON, ERROR_DOMAIN, STATUS_DETAILS_KEY, from_rpc_error, from_status
from jobqueue.v1.error_reason_pb2 import ErrorReason

UNSPECIFIED = ErrorReason.ERROR_REASON_UNSPECIFIED


def _contract_codes() -> dict[str, str]:
    """Each ErrorReason value's status code, as the first word of its comment in the proto."""
    path = Path(jobqueue.v1.__path__[0]) / "descriptors.binpb"
    files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
    (proto,) = [f for f in files if f.name == "jobqueue/v1/error_reason.proto"]
    values = proto.enum_type[0].value
    # Path (enum_type=5, 0, value=2, i) locates the comment of value i.
    return {
        values[loc.path[3]].name: loc.leading_comments.split(".")[0].strip()
        for loc in proto.source_code_info.location
        if list(loc.path[:3]) == [5, 0, 2] and len(loc.path) == 4
    }


def _status(code: int, reason: str | None = None, domain: str = ERROR_DOMAIN) -> status_pb2.Status:
    status = status_pb2.Status(code=code, message="refused")
    if reason is not None:
        status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain=domain))
    return status


def test_every_error_reason_has_a_class_of_its_own_with_the_code_the_contract_gives() -> None:
    codes = _contract_codes()
    reasons = [(name, value) for name, value in ErrorReason.items() if value != UNSPECIFIED]

    missing = [name for name, value in reasons if value not in BY_REASON]

    assert not missing, f"ErrorReason values without an error class: {missing}"
    assert len({BY_REASON[value] for _, value in reasons}) == len(reasons)
    for name, value in reasons:
        cls = BY_REASON[value]
        error = from_status(_status(cls.default_code.value[0], name))
        assert type(error) is cls and error.reason == name, name
        assert cls.default_code.name == codes[name], f"{name}: the contract says {codes[name]}"
        assert getattr(jobqueue, cls.__name__) is cls and cls.__name__ in jobqueue.__all__


def test_a_durability_refusal_is_its_own_class_not_wrong_state() -> None:
    error = from_status(_status(code_pb2.FAILED_PRECONDITION, "DURABILITY_UNAVAILABLE"))

    assert isinstance(error, DurabilityUnavailable) and isinstance(error, FailedPrecondition)
    assert not isinstance(error, WrongState) and not error.retryable


@pytest.mark.parametrize(
    ("reason", "base", "retryable"),
    [
        ("FSYNC_NOT_CONFIRMED", Unavailable, True),
        ("STORE_UNAVAILABLE", Unavailable, True),
        ("SERVER_SHUTTING_DOWN", Unavailable, True),
        ("STORE_FULL", ResourceExhausted, True),
        ("LEASE_LOST", FailedPrecondition, False),
        ("INTERNAL", JobQueueError, False),
    ],
)
def test_reason_classes_keep_the_code_level_class_a_caller_may_catch(
    reason: str, base: type[JobQueueError], retryable: bool
) -> None:
    cls = BY_REASON[ErrorReason.Value(reason)]

    error = from_status(_status(cls.default_code.value[0], reason))

    assert isinstance(error, base) and error.retryable is retryable


@pytest.mark.parametrize(
    ("status", "cls", "reason"),
    [
        (_status(code_pb2.FAILED_PRECONDITION), FailedPrecondition, "FAILED_PRECONDITION"),
        (_status(code_pb2.UNAVAILABLE), Unavailable, "UNAVAILABLE"),
        (_status(code_pb2.INTERNAL), Internal, "INTERNAL"),
        (_status(code_pb2.DATA_LOSS), JobQueueError, "UNKNOWN"),
        # A reason a newer server may add, and a reason of another service's domain.
        (_status(code_pb2.RESOURCE_EXHAUSTED, "QUOTA_EXCEEDED"), ResourceExhausted, "QUOTA_EXCEEDED"),
        (_status(code_pb2.UNAVAILABLE, "LEASE_LOST", domain="proxy.example"), Unavailable, "UNAVAILABLE"),
        (_status(code_pb2.UNAVAILABLE, "ERROR_REASON_UNSPECIFIED"), Unavailable, "ERROR_REASON_UNSPECIFIED"),
    ],
)
def test_a_status_without_a_known_reason_of_ours_maps_to_the_class_of_its_code(
    status: status_pb2.Status, cls: type[JobQueueError], reason: str
) -> None:
    error = from_status(status)

    assert type(error) is cls and error.reason == reason


def test_ok_is_no_error_and_a_confirmation_status_is_typed() -> None:
    lost = from_status(_status(code_pb2.FAILED_PRECONDITION, "LEASE_LOST"))

    assert from_status(status_pb2.Status(code=code_pb2.OK)) is None
    assert isinstance(lost, LeaseLost) and lost.code == grpc.StatusCode.FAILED_PRECONDITION


def test_an_aio_error_is_parsed_from_its_trailing_metadata() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="requests[2].queue", description="bad")
    status = _status(code_pb2.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    bad_request = any_pb2.Any()
    bad_request.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    status.details.append(bad_request)
    trailers = grpc.aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString()))
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), trailers, "requests[2].queue: bad"
    )

    typed = from_rpc_error(error)

    assert isinstance(typed, InvalidArgument)
    assert (typed.field, typed.message, typed.code) == (
        "requests[2].queue",
        "requests[2].queue: bad",
        grpc.StatusCode.INVALID_ARGUMENT,
    )
