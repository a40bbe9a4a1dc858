"""OpenTelemetry spans for producers and workers, after the messaging semantic conventions.

A producer's ``send <queue>`` span rides in each job's metadata as W3C ``traceparent`` (and
``tracestate``) and in the call's gRPC metadata, so the server's span for the call is its
child; a worker's ``process <queue>`` span is a child of that context and links to it. Only
the OpenTelemetry API is used: until the application installs an SDK tracer provider every
span is a non-recording no-op and nothing is injected (docs/monitoring.md, Tracing).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

if TYPE_CHECKING:
    from jobqueue.context import JobContext

SCOPE = "jobqueue"
SYSTEM = "jobqueue"
TRACEPARENT = "traceparent"
#: gRPC metadata of a call: what grpc's ``metadata=`` takes.
CallMetadata = tuple[tuple[str, str], ...]


def tracer_of(provider: TracerProvider | None) -> Tracer:
    """The library's tracer from `provider`, else from the global provider (a no-op until set)."""
    return trace.get_tracer(SCOPE, tracer_provider=provider)


@contextmanager
def send_span(tracer: Tracer, queue: str | None, count: int | None = None) -> Iterator[Span]:
    """The PRODUCER span of one enqueue call (`count` jobs for a batch; `queue` None when a
    batch spans several queues). Errors end it with status ERROR."""
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


@contextmanager
def process_span(tracer: Tracer, ctx: JobContext) -> Iterator[Span]:
    """The CONSUMER span around one handler run: a child of the producer's context carried in
    the job's metadata, with a link to it; current while the handler runs."""
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
