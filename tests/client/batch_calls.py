"""gRPC client interceptors that record the producer calls a client makes (and each message on
an EnqueueStream), for the batching tests."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc

ENQUEUE = "/jobqueue.v1.JobQueueService/Enqueue"
ENQUEUE_BATCH = "/jobqueue.v1.JobQueueService/EnqueueBatch"
ENQUEUE_STREAM = "/jobqueue.v1.JobQueueService/EnqueueStream"


@dataclass
class Sent:
    """One Enqueue or EnqueueBatch call, or one EnqueueStream message, as it went out."""

    method: str
    requests: list[svc.EnqueueRequest]
    timeout: float | None


@dataclass
class CallLog:
    """Every Enqueue and EnqueueBatch call and EnqueueStream message seen, in order (appended
    from any thread)."""

    calls: list[Sent] = field(default_factory=list)
    #: When given, the first call waits for it before it goes out (the sync recorder only).
    hold_first: threading.Event | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, method: str, request: object, timeout: float | None) -> None:
        if isinstance(request, svc.EnqueueBatchRequest | svc.EnqueueStreamRequest):
            requests = list(request.requests)
        elif isinstance(request, svc.EnqueueRequest):
            requests = [request]
        else:
            return
        with self._changed:
            self.calls.append(Sent(method, requests, timeout))
            first = len(self.calls) == 1
            self._changed.notify_all()
        if first and self.hold_first is not None:
            self.hold_first.wait()

    def wait_for(self, calls: int, timeout: float = 10.0) -> None:
        """Blocks until `calls` calls were made (from a thread, never the event loop's)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= calls, timeout):
                raise AssertionError(f"{calls} calls expected, {len(self.calls)} made")

    @property
    def jobs(self) -> int:
        return sum(len(sent.requests) for sent in self.calls)

    def batches(self) -> list[Sent]:
        """The batches: EnqueueBatch calls and EnqueueStream messages."""
        return [sent for sent in self.calls if sent.method in (ENQUEUE_BATCH, ENQUEUE_STREAM)]


def _method(details: grpc.ClientCallDetails | grpc.aio.ClientCallDetails) -> str:
    method: str | bytes = details.method
    return method.decode() if isinstance(method, bytes) else method


def async_recorders(log: CallLog) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors to record every producer call and stream message into `log` (grpc.aio
    files each interceptor under one kind of call only)."""
    return [AsyncRecorder(log), AsyncStreamRecorder(log)]


class AsyncRecorder(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, log: CallLog) -> None:
        self.log = log

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        self.log.record(_method(client_call_details), request, client_call_details.timeout)
        return await continuation(client_call_details, request)


class AsyncStreamRecorder(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, log: CallLog) -> None:
        self.log = log

    async def intercept_stream_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        method = _method(client_call_details)

        async def recorded() -> AsyncIterator[Any]:
            async for request in request_iterator:
                self.log.record(method, request, None)
                yield request

        return await continuation(client_call_details, recorded())


class SyncRecorder(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, log: CallLog) -> None:
        self.log = log

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        self.log.record(_method(client_call_details), request, client_call_details.timeout)
        return continuation(client_call_details, request)
