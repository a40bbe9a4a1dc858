"""A gRPC client interceptor that records the producer calls a client makes, for the batching tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from jobqueue.v1 import job_queue_service_pb2 as svc

ENQUEUE = "/jobqueue.v1.JobQueueService/Enqueue"
ENQUEUE_BATCH = "/jobqueue.v1.JobQueueService/EnqueueBatch"


@dataclass
class Sent:
    """One Enqueue or EnqueueBatch call as it went out."""

    method: str
    requests: list[svc.EnqueueRequest]
    timeout: float | None


@dataclass
class CallLog:
    """Every Enqueue and EnqueueBatch call seen, in order (appended from any thread)."""

    calls: list[Sent] = field(default_factory=list)
    #: When given, the first call waits for it before it goes out (the sync recorder only).
    hold_first: threading.Event | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def record(self, method: str, request: object, timeout: float | None) -> None:
        if isinstance(request, svc.EnqueueBatchRequest):
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
        return [sent for sent in self.calls if sent.method == ENQUEUE_BATCH]


def _method(details: grpc.ClientCallDetails | grpc.aio.ClientCallDetails) -> str:
    method: str | bytes = details.method
    return method.decode() if isinstance(method, bytes) else method


class AsyncRecorder(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, log: CallLog) -> None:
        self.log = log

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        self.log.record(_method(client_call_details), request, client_call_details.timeout)
        return await continuation(client_call_details, request)


class SyncRecorder(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, log: CallLog) -> None:
        self.log = log

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        self.log.record(_method(client_call_details), request, client_call_details.timeout)
        return continuation(client_call_details, request)
