"""`jobq serve --otlp-endpoint` exports a span per RPC to a real OTLP/gRPC receiver, joined to
the producer's trace through the call's traceparent."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from jobqueue import Client
from tests.processes import ServeProcess, wait_until
from tests.support import TestRedis
from tests.tracing import recording


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver keeping what it is sent, as a collector would receive it."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def Export(  # noqa: N802 (the OTLP service's method name)
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[dict[str, str], Any]]:
        """(resource attributes, span) for every span received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                found += [(resource, s) for scope in resource_spans.scope_spans for s in scope.spans]
        return found


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    received = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(received, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield received, port
    server.stop(0)


def test_serve_exports_rpc_spans_over_otlp(
    test_redis: TestRedis, key_prefix: str, receiver: tuple[Receiver, int]
) -> None:
    received, port = receiver
    server = ServeProcess(
        ["--redis-url", test_redis.url, "--otlp-endpoint", f"http://127.0.0.1:{port}"],
        {"JOBQ_KEY_PREFIX": key_prefix},
    )
    recorded = recording()
    try:
        with Client(server.target, batching=None, tracer_provider=recorded.provider) as producer:
            producer.enqueue("emails", {"to": "a@example.com"})
        server.send_signal(signal.SIGTERM)  # a graceful stop sends the spans still batched
        assert server.wait(15) == 0
    finally:
        server.close()

    [send] = recorded.named("send emails")
    context = send.get_span_context()
    assert context is not None
    wait_until(lambda: received.spans(), "spans exported")
    enqueues = [(r, s) for r, s in received.spans() if s.name == "jobqueue.v1.JobQueueService/Enqueue"]
    assert len(enqueues) == 1
    resource, span = enqueues[0]
    assert resource["service.name"] == "jobqueue-server"
    assert span.kind == span.SPAN_KIND_SERVER
    assert span.trace_id.hex() == format(context.trace_id, "032x")
    assert span.parent_span_id.hex() == format(context.span_id, "016x")
