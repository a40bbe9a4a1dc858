"""Exports spans over OTLP (gRPC) when configured: for processes, not for the library.

The library itself only uses the OpenTelemetry API (jobqueue.tracing). A program, the jobq
server and worker among them, calls :func:`install` to make its spans go somewhere; it needs
the ``otlp`` extra (``pip install 'jobqueue-client[otlp]'``), imported only then.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

#: The standard variables that turn export on (OTLP exporters read them themselves).
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def configured_endpoint(endpoint: str | None) -> str | None:
    """`endpoint` if given, else the one the standard environment variables name, else None."""
    if endpoint:
        return endpoint
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), None)


def install(endpoint: str, service_name: str) -> TracerProvider:
    """An SDK tracer provider exporting in batches to the OTLP/gRPC `endpoint`
    (``http://host:4317``: plain text; ``https://``: TLS), made the global one.
    OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win over `service_name`."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return provider
