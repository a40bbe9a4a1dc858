"""Counts every JobQueueService call by method and status code, and times the unary ones.

Installed first, so it sees what the caller sees: a call the auth interceptor refuses counts as
UNAUTHENTICATED or PERMISSION_DENIED. Streams (Lease, EnqueueStream, WatchJob) are counted when
they end; their length says nothing about the server, so they are not timed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.observability.metrics import JobMetrics

SERVICE_PREFIX = "/" + svc.DESCRIPTOR.services_by_name["JobQueueService"].full_name + "/"
Context = grpc.aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def ended_code(context: Context, failed: bool) -> str:
    """The status the call ended with: the one set on it, else OK (UNKNOWN after an exception)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # grpc.aio keeps the number of a code set by abort
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return "UNKNOWN" if failed else "OK"


class RpcMetrics(grpc.aio.ServerInterceptor):
    def __init__(self, metrics: JobMetrics) -> None:
        self._metrics = metrics

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
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(name, handler.stream_stream), **serializers
            )
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._server_stream(name, handler.unary_stream), **serializers
            )
        return grpc.unary_unary_rpc_method_handler(self._unary(name, handler.unary_unary), **serializers)

    def _count(self, name: str, context: Context, failed: bool) -> None:
        self._metrics.rpc_started.labels(name, ended_code(context, failed)).inc()

    def _unary(self, name: str, serve: Any) -> Callable[[Any, Context], Awaitable[Any]]:
        timer = self._metrics.rpc_seconds.labels(name)

        async def behave(request: Any, context: Context) -> Any:
            began, failed = time.perf_counter(), True
            try:
                response = await serve(request, context)
                failed = False
                return response
            finally:
                timer.observe(time.perf_counter() - began)
                self._count(name, context, failed)

        return behave

    def _server_stream(self, name: str, serve: Any) -> Callable[[Any, Context], AsyncIterator[Any]]:
        async def behave(request: Any, context: Context) -> AsyncIterator[Any]:
            failed = True
            try:
                async for response in serve(request, context):
                    yield response
                failed = False
            finally:
                self._count(name, context, failed)

        return behave

    def _stream(self, name: str, serve: Any) -> Callable[[Any, Context], Awaitable[None]]:
        async def behave(requests: AsyncIterator[Any], context: Context) -> None:
            failed = True
            try:
                await serve(requests, context)
                failed = False
            finally:
                self._count(name, context, failed)

        return behave
