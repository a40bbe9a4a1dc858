"""ListJobs pages: opaque page tokens (AIP-158), and pages bounded by count and by bytes.

A token carries the position the next page starts at and a fingerprint of the listing it
belongs to (queue, state and filters), so a token is refused with any other listing, and a
client cannot forge a position it was not given without also forging the fingerprint.
Filters (enqueue time, metadata) are applied as the jobs are read, over at most
MAX_EXAMINED jobs per call, so a filter that matches little cannot make one call scan a
queue of millions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass
from typing import Literal

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import framing, job_wire
from jobqueue_server.api.validation import (
    MAX_METADATA_KEY_CHARS,
    MAX_METADATA_VALUE_CHARS,
    STATE_FROM_PROTO,
    queue_name,
    timestamp_ms,
)
from jobqueue_server.errors import FieldViolation
from jobqueue_server.store import JobState, Store

_VERSION = 1
_LAYOUT = struct.Struct(">BQ8s")  # version, position, fingerprint of (queue, state, filters)
# Jobs read from Redis per round: bounds what one call holds in memory when jobs are large.
_READ_CHUNK = 25
# next_page_token and total_size, with their tags.
_PAGE_FIELDS_BYTES = 64
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
#: Jobs one filtered call may read before it answers with what it found and a token.
MAX_EXAMINED = 5000
MAX_FILTER_PAIRS = 16


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs of the listing a page keeps; the empty filter keeps every one."""

    created_after_ms: int | None = None
    created_before_ms: int | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self.created_after_ms is not None or self.created_before_ms is not None or bool(self.metadata)

    def keeps(self, job: job_pb2.Job) -> bool:
        created = job.create_time.ToMilliseconds()
        if self.created_after_ms is not None and created < self.created_after_ms:
            return False
        if self.created_before_ms is not None and created >= self.created_before_ms:
            return False
        return all(job.metadata.get(key) == value for key, value in self.metadata)

    def key(self) -> str:
        return repr((self.created_after_ms, self.created_before_ms, self.metadata))


@dataclass(frozen=True, slots=True)
class Page:
    queue: str
    state: JobState
    offset: int
    limit: int
    only: JobFilter = JobFilter()


def page_of(request: svc.ListJobsRequest) -> Page:
    """The validated page a request asks for."""
    queue = queue_name(request.queue, "queue")
    state = STATE_FROM_PROTO.get(request.state)
    if state is None:
        raise FieldViolation("state", "must be a job state other than JOB_STATE_UNSPECIFIED")
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise FieldViolation("page_size", f"must be between 0 ({DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}")
    only = filter_of(request)
    offset = offset_of(request.page_token, queue, state, only)
    return Page(queue, state, offset, request.page_size or DEFAULT_PAGE_SIZE, only)


def filter_of(request: svc.ListJobsRequest) -> JobFilter:
    if len(request.metadata) > MAX_FILTER_PAIRS:
        raise FieldViolation("metadata", f"must have at most {MAX_FILTER_PAIRS} entries")
    for key, value in request.metadata.items():
        if not 0 < len(key) <= MAX_METADATA_KEY_CHARS or len(value) > MAX_METADATA_VALUE_CHARS:
            raise FieldViolation(
                f"metadata[{key[:MAX_METADATA_KEY_CHARS]!r}]",
                f"keys must be 1 to {MAX_METADATA_KEY_CHARS} characters, values at most "
                f"{MAX_METADATA_VALUE_CHARS}",
            )
    after = _millis(request, "created_after")
    before = _millis(request, "created_before")
    if after is not None and before is not None and before <= after:
        raise FieldViolation("created_before", "must be later than created_after")
    return JobFilter(after, before, tuple(sorted(request.metadata.items())))


def _millis(request: svc.ListJobsRequest, field: Literal["created_after", "created_before"]) -> int | None:
    return timestamp_ms(getattr(request, field), field) if request.HasField(field) else None


def _fingerprint(queue: str, state: JobState, only: JobFilter) -> bytes:
    return hashlib.blake2b(f"{queue}\0{state}\0{only.key()}".encode(), digest_size=8).digest()


def token_for(queue: str, state: JobState, offset: int, only: JobFilter = JobFilter()) -> str:
    raw = _LAYOUT.pack(_VERSION, offset, _fingerprint(queue, state, only))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def offset_of(token: str, queue: str, state: JobState, only: JobFilter = JobFilter()) -> int:
    """The position a token from an earlier page starts at; 0 for no token."""
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, offset, fingerprint = _LAYOUT.unpack(raw)
    except (binascii.Error, ValueError, struct.error):
        version, offset, fingerprint = 0, 0, b""
    if version != _VERSION or fingerprint != _fingerprint(queue, state, only):
        raise FieldViolation(
            "page_token", "is not a token from a previous page of this queue, state and filters"
        )
    return int(offset)


async def list_page(store: Store, page: Page) -> svc.ListJobsResponse:
    """Up to `page.limit` jobs from `page.offset`, fewer when the next would make the response
    larger than a client accepts; the token then points at the first job left out."""
    response = svc.ListJobsResponse()
    used = _PAGE_FIELDS_BYTES
    position = page.offset
    total = 0
    # A filtered page reads whole chunks (most jobs may not match), up to MAX_EXAMINED.
    end = page.offset + MAX_EXAMINED if page.only else None
    while len(response.jobs) < page.limit and (end is None or position < end):
        want = _READ_CHUNK if end is not None else min(_READ_CHUNK, page.limit - len(response.jobs))
        records, total = await store.list_jobs(page.queue, page.state, position, want)
        for at, record in records:
            if len(response.jobs) == page.limit:  # a filtered read goes on past a full page
                return _finish(response, page, at, total)
            job = job_wire.job_message(record)
            if page.only and not page.only.keeps(job):
                continue
            cost = framing.field_bytes(job)
            if used + cost > framing.MAX_MESSAGE_BYTES:
                return _finish(response, page, at, total)
            response.jobs.append(job)
            used += cost
        position += want
        if position >= total:
            break
    return _finish(response, page, position, total)


def _finish(response: svc.ListJobsResponse, page: Page, next_offset: int, total: int) -> svc.ListJobsResponse:
    response.total_size = total
    if next_offset < total:
        response.next_page_token = token_for(page.queue, page.state, next_offset, page.only)
    return response
