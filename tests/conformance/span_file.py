"""Spans as JSON lines: how the conformance workers hand the spans they recorded to the kit.

The format (README.md, "Tracing") is the same in every language, so test_tracing.py checks a
Go, TypeScript or Python worker's spans against the producer's and the server's alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

#: Set by the kit: the file a conformance worker writes its finished spans to when it exits.
TRACE_FILE_ENV = "JOBQ_TRACE_FILE"


@dataclass(frozen=True)
class SpanRecord:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    links: list[dict[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "UNSET"


def record_of(span: ReadableSpan) -> SpanRecord:
    context = span.get_span_context()
    assert context is not None
    return SpanRecord(
        name=span.name,
        kind=span.kind.name,
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_span_id=format(span.parent.span_id, "016x") if span.parent is not None else "",
        links=[_link(link.context.trace_id, link.context.span_id) for link in span.links],
        attributes=dict(span.attributes or {}),
        status=span.status.status_code.name,
    )


def _link(trace_id: int, span_id: int) -> dict[str, str]:
    return {"trace_id": format(trace_id, "032x"), "span_id": format(span_id, "016x")}


def write(path: Path, spans: Iterable[ReadableSpan]) -> None:
    with path.open("w") as out:
        for span in spans:
            out.write(json.dumps(record_of(span).__dict__) + "\n")


def read(path: Path) -> list[SpanRecord]:
    return [SpanRecord(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
