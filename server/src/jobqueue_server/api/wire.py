"""Protobuf wire format written by hand, for the messages on the hot paths.

A job's immutable fields are serialized once, at enqueue, and stored as bytes; a lease sends
those bytes with the few fields that change appended. Protobuf readers take the last value of a
scalar field and concatenate repeated ones, so appending is a valid way to set a field that the
stored bytes do not carry. Messages built here are checked against the generated code in
tests/server/test_wire.py.

This runs a few times per job on every lease, so small values come from tables built once:
varints below 2^14, tags, and the two halves of a timestamp (whole seconds repeat from job to
job; milliseconds take 1,000 values).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from jobqueue.v1 import job_queue_service_pb2 as svc

# Wire types.
_VARINT, _LEN = 0, 2


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = tuple(_encode_varint(n) for n in range(1 << 14))


def varint(value: int) -> bytes:
    """A non-negative integer as a varint (negative values are never written here)."""
    return _SMALL[value] if value < 16384 else _encode_varint(value)


@functools.cache
def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def varint_field(field: int, value: int) -> bytes:
    """A varint field; nothing for 0 (proto3's default is not written)."""
    return tag(field, _VARINT) + varint(value) if value else b""


def len_field(field: int, value: bytes) -> bytes:
    """A length-delimited field (bytes, string or message), written even when empty."""
    return tag(field, _LEN) + varint(len(value)) + value


def text_field(field: int, value: str) -> bytes:
    """A string field; nothing for "" (proto3's default)."""
    return len_field(field, value.encode()) if value else b""


@functools.lru_cache(maxsize=65536)
def _seconds(seconds: int) -> bytes:
    return b"\x08" + varint(seconds)  # Timestamp.seconds, field 1


# Timestamp.nanos (field 2) for each whole millisecond; nothing for 0.
_MILLIS = (b"", *(b"\x10" + _encode_varint(ms * 1_000_000) for ms in range(1, 1000)))


def timestamp(ms: int) -> bytes:
    """A google.protobuf.Timestamp's fields for Unix milliseconds `ms` (>= 0)."""
    seconds, rest = divmod(ms, 1000)
    return (_seconds(seconds) if seconds else b"") + _MILLIS[rest]


def timestamp_field(field: int, ms: int) -> bytes:
    """A Timestamp field; nothing for 0 (unset). Its body is at most 11 bytes: a 1-byte length."""
    if not ms:
        return b""
    body = timestamp(ms)
    return tag(field, _LEN) + _SMALL[len(body)] + body


def duration_field(field: int, ms: int) -> bytes:
    """A google.protobuf.Duration field of `ms` milliseconds; nothing for 0 (unset)."""
    return timestamp_field(field, ms)  # the same two fields as a Timestamp


# Field numbers of jobqueue.v1.Job, so the code that builds jobs reads like the proto.
JOB_ID, JOB_QUEUE, JOB_STATE, JOB_PAYLOAD, JOB_PAYLOAD_BYTES, JOB_PRIORITY = 1, 2, 3, 4, 5, 6
JOB_ATTEMPTS, JOB_MAX_ATTEMPTS, JOB_CREATE_TIME, JOB_SCHEDULE_TIME, JOB_START_TIME = 7, 8, 9, 10, 11
JOB_FINISH_TIME, JOB_RESULT, JOB_LAST_ERROR, JOB_ERRORS, JOB_METADATA = 12, 13, 14, 15, 16
JOB_LEASE_DURATION, JOB_BACKOFF, JOB_IDEMPOTENCY_KEY, JOB_WORKER_ID = 17, 18, 19, 20
JOB_TIMEOUT, JOB_START_DEADLINE, JOB_UNIQUE_KEY = 21, 22, 25
JOB_DEPENDS_ON, JOB_ON_DEPENDENCY_FAILURE, JOB_GROUP_KEY = 26, 27, 28


_RESPONSE_JOB_ID = svc.EnqueueResponse.DESCRIPTOR.fields_by_name["job_id"].number
_DUPLICATE = varint_field(svc.EnqueueResponse.DESCRIPTOR.fields_by_name["duplicate"].number, 1)


def enqueue_response(job_id: str, duplicate: bool) -> bytes:
    """An EnqueueResponse, written out: the answer to every unary Enqueue."""
    return text_field(_RESPONSE_JOB_ID, job_id) + (_DUPLICATE if duplicate else b"")


_RESPONSES = tag(svc.EnqueueBatchResponse.DESCRIPTOR.fields_by_name["responses"].number, _LEN)
_STREAM_SEQUENCE = svc.EnqueueStreamResponse.DESCRIPTOR.fields_by_name["sequence"].number
_STREAM_RESPONSES = tag(svc.EnqueueStreamResponse.DESCRIPTOR.fields_by_name["responses"].number, _LEN)


def _responses(field_tag: bytes, outcomes: Iterable[tuple[str, bool]]) -> list[bytes]:
    """Repeated EnqueueResponse fields of (job id, duplicate) pairs: building a message object
    per job cost more than the rest of answering a batch."""
    parts: list[bytes] = []
    for job_id, duplicate in outcomes:
        response = enqueue_response(job_id, duplicate)
        parts += (field_tag, varint(len(response)), response)
    return parts


def enqueue_batch_response(outcomes: Iterable[tuple[str, bool]]) -> bytes:
    """An EnqueueBatchResponse, written out."""
    return b"".join(_responses(_RESPONSES, outcomes))


def enqueue_stream_response(sequence: int, outcomes: Iterable[tuple[str, bool]]) -> bytes:
    """An EnqueueStreamResponse that answers with (job id, duplicate) pairs, written out."""
    return b"".join([varint_field(_STREAM_SEQUENCE, sequence), *_responses(_STREAM_RESPONSES, outcomes)])
