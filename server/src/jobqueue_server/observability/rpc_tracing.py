"""A SERVER span per JobQueueService call, after the OpenTelemetry RPC semantic conventions.

The caller's context comes from the call's ``traceparent`` metadata (the clients send their
``send <queue>`` span there), so an Enqueue's server span joins the producer's trace. Installed
only when tracing is configured (--otlp-endpoint, or a tracer provider given to start_app):
otherwise no interceptor runs at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from jobqueue_server.observability.rpc_metrics import SERVICE_PREFIX, Context, Handler, ended_code

SERVICE = SERVICE_PREFIX.strip("/")
# Trace context headers of the W3C format (and baggage): the only metadata read.
PROPAGATED = frozenset({"traceparent", "tracestate", "baggage"})


class RpcTracing(grpc.aio.ServerInterceptor):
    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

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
        carrier = {
            key: value
            for key, value in handler_call_details.invocation_metadata or ()
            if key in PROPAGATED and isinstance(value, str)
        }
        call = _Call(self._tracer, name, carrier)
        serializers = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(call.stream(handler.stream_stream), **serializers)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                call.server_stream(handler.unary_stream), **serializers
            )
        return grpc.unary_unary_rpc_method_handler(call.unary(handler.unary_unary), **serializers)


class _Call:
    """Wraps one method's behaviour in its span."""

    def __init__(self, tracer: Tracer, method: str, carrier: dict[str, str]) -> None:
        self._tracer = tracer
        self._method = method
        self._carrier = carrier

    def _span(self) -> Span:
        # Started, not made current: the service makes no spans of its own to nest under it, and
        # a stream's generator may be closed from another context than the one it began in.
        return self._tracer.start_span(
            f"{SERVICE}/{self._method}",
            context=propagate.extract(self._carrier) if self._carrier else None,
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": SERVICE, "rpc.method": self._method},
        )

    @staticmethod
    def _end(span: Span, context: Context, error: BaseException | None) -> None:
        code = ended_code(context, error is not None)
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[code].value[0])
        if error is not None and not isinstance(error, asyncio.CancelledError | grpc.aio.AbortError):
            span.record_exception(error)
        if code != "OK":
            span.set_status(Status(StatusCode.ERROR, code))
        span.end()

    def unary(self, serve: Any) -> Callable[[Any, Context], Awaitable[Any]]:
        async def behave(request: Any, context: Context) -> Any:
            span, error = self._span(), None
            try:
                return await serve(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._end(span, context, error)

        return behave

    def server_stream(self, serve: Any) -> Callable[[Any, Context], AsyncIterator[Any]]:
        async def behave(request: Any, context: Context) -> AsyncIterator[Any]:
            span, error = self._span(), None
            try:
                async for response in serve(request, context):
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._end(span, context, error)

        return behave

    def stream(self, serve: Any) -> Callable[[Any, Context], Awaitable[None]]:
        async def behave(requests: AsyncIterator[Any], context: Context) -> None:
            span, error = self._span(), None
            try:
                await serve(requests, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._end(span, context, error)

        return behave
