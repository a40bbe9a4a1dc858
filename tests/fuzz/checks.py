"""The properties every fuzzed call must keep, checked the same way for every RPC.

A call either succeeds or is refused with a clear status: INVALID_ARGUMENT naming a real
field of the request in a google.rpc.BadRequest, NOT_FOUND, or FAILED_PRECONDITION, each
with an ErrorInfo in the service's domain. Never UNKNOWN, INTERNAL or a deadline. A
refused call leaves the keyspace exactly as it was.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from tests.fuzz.keyspace import Keyspace, describe_change

ERROR_DOMAIN = "jobqueue.dev"
CALL_TIMEOUT_S = 10.0
REFUSALS = {code_pb2.INVALID_ARGUMENT, code_pb2.NOT_FOUND, code_pb2.FAILED_PRECONDITION}
_REASON_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

ResponseT = TypeVar("ResponseT")


@dataclass(frozen=True)
class Refused:
    """A call refused with a clear status; `field` is the BadRequest field, if any."""

    code: int
    field: str | None


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status a refused call carries (code and message alone if no details)."""
    status = rpc_status.from_call(error)
    if status is None:
        return status_pb2.Status(code=error.code().value[0], message=error.details() or "")
    return status


def _details(status: status_pb2.Status) -> tuple[list[str], list[error_details_pb2.BadRequest]]:
    reasons: list[str] = []
    bad_requests: list[error_details_pb2.BadRequest] = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            assert info.domain == ERROR_DOMAIN, f"ErrorInfo domain {info.domain!r}"
            reasons.append(info.reason)
        elif detail.Unpack(bad):
            bad_requests.append(bad)
    return reasons, bad_requests


def check_refusal(status: status_pb2.Status, request: Message) -> Refused:
    """Asserts `status` is a clear refusal of `request`."""
    code_name = code_pb2.Code.Name(status.code)
    assert status.code in REFUSALS, f"{code_name}: {status.message}"
    reasons, bad_requests = _details(status)
    assert len(reasons) == 1 and _REASON_RE.fullmatch(reasons[0]), f"ErrorInfo reasons {reasons}"
    if status.code != code_pb2.INVALID_ARGUMENT:
        return Refused(status.code, None)
    assert len(bad_requests) == 1, f"{code_name} without a BadRequest: {status.message}"
    (violation,) = bad_requests[0].field_violations
    assert violation.description, "a field violation without a description"
    resolve_path(request, violation.field)
    assert status.message.startswith(violation.field), "the message does not lead with the field"
    return Refused(status.code, str(violation.field))


def resolve_path(message: Message, path: str) -> None:
    """Asserts `path` (``requests[2].backoff.jitter``, ``metadata['k']``) names a part of
    `message`: every name a field, every index in range, every map key present."""
    position, current = 0, message
    while True:
        match = _NAME_RE.match(path, position)
        assert match is not None, f"{path!r}: no field name at {position}"
        field = current.DESCRIPTOR.fields_by_name.get(match.group())
        assert field is not None, f"{path!r}: {current.DESCRIPTOR.name} has no field {match.group()!r}"
        value: Any = getattr(current, match.group())
        position = match.end()
        if path.startswith("[", position):
            subscript, position = _subscript(path, position)
            value = _element(value, subscript, path)
        if position == len(path):
            return
        assert path[position] == "." and isinstance(value, Message), f"{path!r}: cannot go on at {position}"
        position, current = position + 1, value


def _subscript(path: str, start: int) -> tuple[int | str, int]:
    """The index or map key in ``[...]`` at `start`, and the position after the bracket."""
    if path[start + 1 : start + 2] in ("'", '"'):
        quote, end, escaped = path[start + 1], start + 2, False
        while end < len(path) and (escaped or path[end] != quote):
            escaped = not escaped and path[end] == "\\"
            end += 1
        key = ast.literal_eval(path[start + 1 : end + 1])
        assert path[end + 1 : end + 2] == "]", f"{path!r}: unclosed map key"
        return str(key), end + 2
    end = path.index("]", start)
    return int(path[start + 1 : end]), end + 1


def _element(container: Any, subscript: int | str, path: str) -> Any:
    if isinstance(subscript, str):
        assert subscript in container, f"{path!r}: no map entry {subscript!r}"
        return container[subscript]
    assert 0 <= subscript < len(container), f"{path!r}: index {subscript} of {len(container)}"
    return container[subscript]


async def call_checked(
    keyspace: Keyspace,
    method: Callable[..., Awaitable[ResponseT]],
    request: Message,
) -> ResponseT | Refused:
    """Calls `method`; on a refusal checks the status and that nothing was written."""
    before = await keyspace.snapshot()
    try:
        return await method(request, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as error:
        refused = check_refusal(status_of(error), request)
        after = await keyspace.snapshot()
        assert after == before, f"a refused call wrote: {describe_change(before, after)}"
        return refused
