"""The one interceptor that authenticates and authorizes every JobQueueService call.

It runs before the servicer sees a request: the token must be valid and its role allowed for
the method, and every queue a request names (each message of a stream too) must match the
token's patterns. A refusal is a status with an ErrorInfo reason, and nothing runs: an
EnqueueStream request outside the patterns is answered with it like any refused request of that
stream, a Lease message outside them ends the stream. Health checking and reflection are other
services and stay open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from grpc_status import rpc_status

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api.enqueue_stream import RefusedRequest
from jobqueue_server.api.status import rpc_status_of
from jobqueue_server.auth.policy import Principal, current_principal, queues_named
from jobqueue_server.auth.registry import TokenRegistry
from jobqueue_server.errors import JobQueueError, QueueNotAllowed, RoleNotAllowed

SERVICE_PREFIX = "/" + svc.DESCRIPTOR.services_by_name["JobQueueService"].full_name + "/"
Context = grpc.aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # not subscriptable at run time


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks the bearer token of every JobQueueService call against the registry."""

    def __init__(self, registry: TokenRegistry, repeated_limit: int) -> None:
        """`repeated_limit`: the most queues of one repeated field checked here; a longer field
        is refused whole by validation (max_batch, max_in_flight) before anything is done."""
        self._registry = registry
        self._limit = repeated_limit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        name = method[len(SERVICE_PREFIX) :]
        authorization = _header(handler_call_details.invocation_metadata, "authorization")
        try:
            principal = await self._registry.authenticate(authorization)
            if not principal.may_call(name):
                raise RoleNotAllowed(f"a {principal.role} token may not call {name}")
        except JobQueueError as error:
            return _refusing(handler, error)
        if handler.request_streaming:
            return _stream_handler(handler, self._guarded_stream(handler, principal))
        if handler.response_streaming:  # WatchJob
            return grpc.unary_stream_rpc_method_handler(
                self._guarded_server_stream(handler, principal),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            self._guarded_unary(handler, principal),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _scope_error(self, principal: Principal, request: Any) -> QueueNotAllowed | None:
        if principal.unrestricted:
            return None
        for field, queue in queues_named(request, self._limit):
            if not principal.may_touch(queue):
                return QueueNotAllowed(field, f"{queue!r} is outside this token's queues")
        return None

    def _guarded_unary(
        self, handler: Handler, principal: Principal
    ) -> Callable[[Any, Context], Awaitable[Any]]:
        async def behave(request: Any, context: Context) -> Any:
            error = self._scope_error(principal, request)
            if error is not None:
                await _abort(context, error)
            current_principal.set(principal)  # this call's task only
            serve: Any = handler.unary_unary  # typed by grpc's stubs as a blocking function
            return await serve(request, context)

        return behave

    def _guarded_server_stream(
        self, handler: Handler, principal: Principal
    ) -> Callable[[Any, Context], AsyncIterator[Any]]:
        async def behave(request: Any, context: Context) -> AsyncIterator[Any]:
            error = self._scope_error(principal, request)
            if error is not None:
                await _abort(context, error)
            current_principal.set(principal)
            serve: Any = handler.unary_stream  # typed by grpc's stubs as a blocking function
            async for response in serve(request, context):
                yield response

        return behave

    def _guarded_stream(
        self, handler: Handler, principal: Principal
    ) -> Callable[[Any, Context], Awaitable[None]]:
        async def behave(requests: AsyncIterator[Any], context: Context) -> None:
            loop = asyncio.get_running_loop()
            violation: asyncio.Future[JobQueueError] = loop.create_future()

            async def checked() -> AsyncIterator[Any]:
                async for message in requests:
                    error = self._scope_error(principal, message)
                    if error is None:
                        yield message
                    elif isinstance(message, svc.EnqueueStreamRequest):  # refused alone, in turn
                        yield RefusedRequest(message.sequence, error)
                    else:
                        violation.set_result(error)
                        await asyncio.Event().wait()  # held until the stream is cancelled

            current_principal.set(principal)  # copied into the serving task
            stream: Any = handler.stream_stream  # typed by grpc's stubs as a blocking function
            serving = asyncio.create_task(stream(checked(), context))
            revoked = self._registry.watch(principal)
            try:
                await asyncio.wait({serving, revoked, violation}, return_when=asyncio.FIRST_COMPLETED)
                if not serving.done():
                    error = violation.result() if violation.done() else revoked.result()
                    await _stop(serving)  # a Lease stream releases its jobs first
                    await _abort(context, error)
                serving.result()
            finally:
                revoked.cancel()
                violation.cancel()
                await _stop(serving)

        return behave


async def _stop(task: asyncio.Task[Any]) -> None:
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)


async def _abort(context: Context, error: JobQueueError) -> None:
    await context.abort_with_status(rpc_status.to_status(rpc_status_of(error)))


def _header(metadata: Any, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _refusing(handler: Handler, error: JobQueueError) -> Handler:
    async def refuse(_: Any, context: Context) -> None:
        await _abort(context, error)

    if handler.request_streaming:
        return _stream_handler(handler, refuse)
    return grpc.unary_unary_rpc_method_handler(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _stream_handler(handler: Handler, behave: Callable[[Any, Context], Awaitable[None]]) -> Handler:
    return grpc.stream_stream_rpc_method_handler(
        behave,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
