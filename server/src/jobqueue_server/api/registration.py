"""Registers JobQueueService with request parsing that cannot end a call with UNKNOWN.

The generated `add_JobQueueServiceServicer_to_server` parses requests with `FromString`; when
the bytes are not a message, grpcio answers UNKNOWN with a Python traceback's text. Here a body
that does not parse becomes a `Malformed` value the servicer refuses with INVALID_ARGUMENT and
the usual error details.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.status import rpc_status_of
from jobqueue_server.errors import FieldViolation

SERVICE = svc.DESCRIPTOR.services_by_name["JobQueueService"]
# Unary methods whose servicer answers with bytes (the hot ones, written out by api/wire.py).
PRESERIALIZED = frozenset({"Enqueue", "EnqueueBatch"})


class Malformed:
    """A request body that did not parse as the method's message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def error(self) -> FieldViolation:
        return FieldViolation("request", f"is not a valid protobuf message: {self.reason}")


def _lenient(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as error:
            return Malformed(str(error))

    return deserialize


def _refusing_malformed(method: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    @functools.wraps(method)
    async def handle(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, Malformed):
            await context.abort_with_status(rpc_status.to_status(rpc_status_of(request.error())))
        return await method(request, context)

    return handle


def _already_serialized(message: bytes) -> bytes:
    return message


def add_service(servicer: Any, server: grpc.aio.Server) -> None:
    """Like the generated registration, with lenient parsing (see the module docstring)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in SERVICE.methods:
        parse = _lenient(getattr(svc, method.input_type.name).FromString)
        serialize = getattr(svc, method.output_type.name).SerializeToString
        implementation = getattr(servicer, method.name)
        if method.server_streaming and not method.client_streaming:  # WatchJob: refuses Malformed itself
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                implementation, request_deserializer=parse, response_serializer=serialize
            )
        elif method.client_streaming:  # Lease: the session refuses a Malformed message itself
            # The session writes LeaseResponses already serialized (jobs spliced from their
            # stored bytes), so they pass through as they are.
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                implementation, request_deserializer=parse, response_serializer=_already_serialized
            )
        else:
            if method.name in PRESERIALIZED:
                serialize = _already_serialized
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                _refusing_malformed(implementation), request_deserializer=parse, response_serializer=serialize
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),))
