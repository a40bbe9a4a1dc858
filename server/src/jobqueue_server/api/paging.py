"""ListJobs pages: opaque page tokens (AIP-158), and pages bounded by count and by bytes.

A token carries the position the next page starts at and a fingerprint of the listing it
belongs to (queue and state), so a token is refused with any other queue or state, and a
client cannot forge a position it was not given without also forging the fingerprint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import framing, job_wire
from jobqueue_server.api.validation import STATE_FROM_PROTO, queue_name
from jobqueue_server.errors import FieldViolation
from jobqueue_server.store import JobState, Store

_VERSION = 1
_LAYOUT = struct.Struct(">BQ8s")  # version, position, fingerprint of (queue, state)
# Jobs read from Redis per round: bounds what one call holds in memory when jobs are large.
_READ_CHUNK = 25
# next_page_token and total_size, with their tags.
_PAGE_FIELDS_BYTES = 64
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Page:
    queue: str
    state: JobState
    offset: int
    limit: int


def page_of(request: svc.ListJobsRequest) -> Page:
    """The validated page a request asks for."""
    queue = queue_name(request.queue, "queue")
    state = STATE_FROM_PROTO.get(request.state)
    if state is None:
        raise FieldViolation("state", "must be a job state other than JOB_STATE_UNSPECIFIED")
    if not 0 <= request.page_size <= MAX_PAGE_SIZE:
        raise FieldViolation("page_size", f"must be between 0 ({DEFAULT_PAGE_SIZE}) and {MAX_PAGE_SIZE}")
    offset = offset_of(request.page_token, queue, state)
    return Page(queue, state, offset, request.page_size or DEFAULT_PAGE_SIZE)


def _fingerprint(queue: str, state: JobState) -> bytes:
    return hashlib.blake2b(f"{queue}\0{state}".encode(), digest_size=8).digest()


def token_for(queue: str, state: JobState, offset: int) -> str:
    raw = _LAYOUT.pack(_VERSION, offset, _fingerprint(queue, state))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def offset_of(token: str, queue: str, state: JobState) -> int:
    """The position a token from an earlier page starts at; 0 for no token."""
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, offset, fingerprint = _LAYOUT.unpack(raw)
    except (binascii.Error, ValueError, struct.error):
        version, offset, fingerprint = 0, 0, b""
    if version != _VERSION or fingerprint != _fingerprint(queue, state):
        raise FieldViolation("page_token", "is not a token from a previous page of this queue and state")
    return int(offset)


async def list_page(store: Store, page: Page) -> svc.ListJobsResponse:
    """Up to `page.limit` jobs from `page.offset`, fewer when the next would make the response
    larger than a client accepts; the token then points at the first job left out."""
    response = svc.ListJobsResponse()
    used = _PAGE_FIELDS_BYTES
    position = page.offset
    total = 0
    while len(response.jobs) < page.limit:
        want = min(_READ_CHUNK, page.limit - len(response.jobs))
        records, total = await store.list_jobs(page.queue, page.state, position, want)
        for at, record in records:
            job = job_wire.job_message(record)
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
        response.next_page_token = token_for(page.queue, page.state, next_offset)
    return response
