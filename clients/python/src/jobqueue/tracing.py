"""OpenTelemetry spans for producers and workers, after the messaging semantic conventions.

A producer's ``send <queue>`` span rides in each job's metadata as W3C ``traceparent`` (and
``tracestate``) and in the call's gRPC metadata, so the server's span for the call is its
child; a worker's ``process <queue>`` span is a child of that context and links to it. Only
the OpenTelemetry API is used: until the application installs an SDK tracer provider every
span is a non-recording no-op and nothing is injected (docs/monitoring.md, Tracing).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
    TracerProvider,
)

if TYPE_CHECKING:
    from jobqueue.context import JobContext

SCOPE = "jobqueue"
SYSTEM = "jobqueue"
TRACEPARENT = "traceparent"
#: gRPC metadata of a call: what grpc's ``metadata=`` takes.
CallMetadata = tuple[tuple[str, str], ...]


class _Off:
    """What a span block is while no SDK is installed: nothing to start, attach or end."""

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


OFF = _Off()


class Tracer:
    """The library's tracer on `provider`, else on the global provider (a no-op until set).

    Checks per use whether an SDK is installed, so that with tracing off an enqueue costs a
    type check rather than a no-op span's start, context attach and end (docs/performance.md).
    """

    def __init__(self, provider: TracerProvider | None) -> None:
        self._provider = provider
        self.otel = trace.get_tracer(SCOPE, tracer_provider=provider)

    def on(self) -> bool:
        provider = self._provider if self._provider is not None else trace.get_tracer_provider()
        return not isinstance(provider, ProxyTracerProvider | NoOpTracerProvider)


def send_span(tracer: Tracer, queue: str | None, count: int | None = None) -> AbstractContextManager[Span]:
    """The PRODUCER span of one enqueue call (`count` jobs for a batch; `queue` None when a
    batch spans several queues). Errors end it with status ERROR."""
    return _send_span(tracer.otel, queue, count) if tracer.on() else OFF


@contextmanager
def _send_span(tracer: trace.Tracer, queue: str | None, count: int | None) -> Iterator[Span]:
    attributes: dict[str, str | int] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
    }
    if queue is not None:
        attributes["messaging.destination.name"] = queue
    if count is not None:
        attributes["messaging.batch.message_count"] = count
    name = f"send {queue}" if queue is not None else "send"
    with tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=attributes) as span:
        yield span


def inject_job(span: Span, metadata: MutableMapping[str, str]) -> None:
    """Writes the span's context into a job's metadata, unless the caller put one there."""
    if span.is_recording() and TRACEPARENT not in metadata:
        propagate.inject(metadata, context=trace.set_span_in_context(span))


def call_metadata(span: Span) -> CallMetadata | None:
    """The span's context as gRPC metadata for the call (None when not recording)."""
    if not span.is_recording():
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return tuple(carrier.items())


def process_span(tracer: Tracer, ctx: JobContext) -> AbstractContextManager[Span]:
    """The CONSUMER span around one handler run: a child of the producer's context carried in
    the job's metadata, with a link to it; current while the handler runs."""
    return _process_span(tracer.otel, ctx) if tracer.on() else OFF


@contextmanager
def _process_span(tracer: trace.Tracer, ctx: JobContext) -> Iterator[Span]:
    metadata = ctx.metadata
    parent = propagate.extract(metadata) if TRACEPARENT in metadata else None
    creation = trace.get_current_span(parent).get_span_context() if parent is not None else None
    links = [Link(creation)] if creation is not None and creation.is_valid else None
    attributes: dict[str, str | int] = {
        "messaging.system": SYSTEM,
        "messaging.destination.name": ctx.queue,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": ctx.job_id,
        "jobqueue.job.attempt": ctx.attempt,
        "jobqueue.worker.id": ctx.worker_id,
    }
    with tracer.start_as_current_span(
        f"process {ctx.queue}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes, links=links
    ) as span:
        yield span


def mark_failed(span: Span, message: str) -> None:
    """Status ERROR for a handler that failed without raising out of the span."""
    if span.is_recording():
        span.set_status(Status(StatusCode.ERROR, message.split("\n", 1)[0]))
