"""Keeps every message the server sends within what a default gRPC client accepts.

grpc-go, grpc-java, grpc-js and grpcio all refuse a received message over 4 MiB unless the
application raised the limit, and a refused message ends the call. So the server counts the
encoded bytes of what it sends (each job with its payload, metadata and errors; each
confirmation) and splits a LeaseResponse, or ends a ListJobs page early, before the limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

from jobqueue_server.api import validation, wire

#: gRPC's default receive limit, in every language.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Sized(Protocol):
    def ByteSize(self) -> int: ...  # noqa: N802  (protobuf's name)


M = TypeVar("M", bound=Sized)


def field_bytes(message: Sized) -> int:
    """What a message costs as one element of a repeated field numbered below 16: one tag
    byte, the length as a varint, then the message itself."""
    size = message.ByteSize()
    return 1 + _varint_bytes(size) + size


def _varint_bytes(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def within(items: Iterable[M], budget: int = MAX_MESSAGE_BYTES) -> Iterator[list[M]]:
    """Consecutive groups of `items` whose encoded size stays within `budget`.

    An item larger than the budget on its own is a group of its own: the settings keep every
    job below the limit (config.py checks the worst case at start), so that never happens.
    """
    group: list[M] = []
    used = 0
    for item in items:
        cost = field_bytes(item)
        if group and used + cost > budget:
            yield group
            group, used = [], 0
        group.append(item)
        used += cost
    if group:
        yield group


def lease_responses(
    jobs: Sequence[bytes] = (), confirmations: Sequence[bytes] = (), stops: Sequence[bytes] = ()
) -> list[bytes]:
    """As few serialized LeaseResponses as carry `stops` (serialized JobStops),
    `confirmations` (serialized Confirmations) and `jobs` (serialized LeasedJobs), none over
    the limit."""
    fields = [wire.len_field(_STOPS, s) for s in stops]
    fields += [wire.len_field(_CONFIRMATIONS, c) for c in confirmations]
    fields += [wire.len_field(_JOBS, j) for j in jobs]
    responses: list[bytes] = []
    group: list[bytes] = []
    used = 0
    for field in fields:
        if group and used + len(field) > MAX_MESSAGE_BYTES:
            responses.append(b"".join(group))
            group, used = [], 0
        group.append(field)
        used += len(field)
    if group:
        responses.append(b"".join(group))
    return responses


# LeaseResponse's fields.
_JOBS, _CONFIRMATIONS, _STOPS = 1, 2, 3


# UTF-8 takes up to 4 bytes a character; validation bounds text fields in characters.
_UTF8_MAX = 4
# Ids, queue, token, worker id, idempotency key, times, durations, backoff, enums, tags: the
# text ones at their validation limits, with room to spare.
_FIXED_FIELDS_BYTES = 8 * 1024


def largest_job_bytes(limits: validation.Limits, max_errors_kept: int) -> int:
    """The most a Job (in a LeasedJob or a ListJobs page) can take on the wire under these
    limits: payload and result at the payload limit, every metadata entry and kept error at
    its limit."""
    metadata_entry = (
        _UTF8_MAX * (validation.MAX_METADATA_KEY_CHARS + validation.MAX_METADATA_VALUE_CHARS) + 16
    )
    error_entry = limits.max_error_bytes + 32
    return (
        2 * (limits.max_payload_bytes + 8)
        + limits.max_metadata_entries * metadata_entry
        + (max_errors_kept + 1) * error_entry  # the history, and last_error
        + _FIXED_FIELDS_BYTES
    )
