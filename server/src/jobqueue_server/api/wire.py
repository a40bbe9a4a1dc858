"""Protobuf wire format written by hand, for the messages on the hot paths.

A job's immutable fields are serialized once, at enqueue, and stored as bytes; a lease sends
those bytes with the few fields that change appended. Protobuf readers take the last value of a
scalar field and concatenate repeated ones, so appending is a valid way to set a field that the
stored bytes do not carry. Messages built here are checked against the generated code in
tests/server/test_wire.py.
"""

from __future__ import annotations

import functools
import struct

from jobqueue.v1 import job_pb2

# Wire types.
_VARINT, _LEN = 0, 2


@functools.lru_cache(maxsize=4096)
def _small_varint(value: int) -> bytes:
    return _encode_varint(value)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint(value: int) -> bytes:
    """A non-negative integer as a varint (negative int32/int64 values are not used here)."""
    return _small_varint(value) if value < 4096 else _encode_varint(value)


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


def timestamp(ms: int) -> bytes:
    """A google.protobuf.Timestamp's fields for Unix milliseconds `ms` (>= 0)."""
    seconds, rest = divmod(ms, 1000)
    return varint_field(1, seconds) + varint_field(2, rest * 1_000_000)


def timestamp_field(field: int, ms: int) -> bytes:
    """A Timestamp field; nothing for 0 (unset)."""
    return len_field(field, timestamp(ms)) if ms else b""


def duration_field(field: int, ms: int) -> bytes:
    """A google.protobuf.Duration field of `ms` milliseconds; nothing for 0 (unset)."""
    return len_field(field, timestamp(ms)) if ms else b""  # the same two fields as a Timestamp


def double_field(field: int, value: float) -> bytes:
    return tag(field, 1) + struct.pack("<d", value) if value else b""


# Field numbers of jobqueue.v1.Job, so the code below reads like the proto.
JOB_ID, JOB_QUEUE, JOB_STATE, JOB_PAYLOAD, JOB_PAYLOAD_BYTES, JOB_PRIORITY = 1, 2, 3, 4, 5, 6
JOB_ATTEMPTS, JOB_MAX_ATTEMPTS, JOB_CREATE_TIME, JOB_SCHEDULE_TIME, JOB_START_TIME = 7, 8, 9, 10, 11
JOB_FINISH_TIME, JOB_RESULT, JOB_LAST_ERROR, JOB_ERRORS, JOB_METADATA = 12, 13, 14, 15, 16
JOB_LEASE_DURATION, JOB_BACKOFF, JOB_IDEMPOTENCY_KEY, JOB_WORKER_ID = 17, 18, 19, 20

STATE_ACTIVE = varint_field(JOB_STATE, job_pb2.JOB_STATE_ACTIVE)
