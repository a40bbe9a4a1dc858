"""A job's wire bytes: its immutable part serialized once at enqueue, and the fields that
change written after it whenever the job is sent (leased, read, listed).

The stored part holds id, queue, payload, payload_bytes, priority, max_attempts, metadata,
lease_duration, backoff, idempotency_key, timeout, start_deadline, unique_key, depends_on,
on_dependency_failure and group_key. Everything else (state, attempts, times, result,
errors, worker) lives in the job's record (docs/state-machine.md) and is appended from there, so
the two can never disagree.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping

from jobqueue.v1 import job_pb2
from jobqueue_server.api import convert
from jobqueue_server.api.wire import (
    JOB_ATTEMPTS,
    JOB_BACKOFF,
    JOB_CREATE_TIME,
    JOB_DEPENDS_ON,
    JOB_ERRORS,
    JOB_FINISH_TIME,
    JOB_GROUP_KEY,
    JOB_ID,
    JOB_IDEMPOTENCY_KEY,
    JOB_LAST_ERROR,
    JOB_LEASE_DURATION,
    JOB_MAX_ATTEMPTS,
    JOB_METADATA,
    JOB_ON_DEPENDENCY_FAILURE,
    JOB_PAYLOAD,
    JOB_PAYLOAD_BYTES,
    JOB_PRIORITY,
    JOB_QUEUE,
    JOB_RESULT,
    JOB_SCHEDULE_TIME,
    JOB_START_DEADLINE,
    JOB_START_TIME,
    JOB_STATE,
    JOB_TIMEOUT,
    JOB_UNIQUE_KEY,
    JOB_WORKER_ID,
    duration_field,
    len_field,
    tag,
    text_field,
    timestamp_field,
    varint,
    varint_field,
)
from jobqueue_server.store import Backoff, ErrorEntry, JobRecord

# LeasedJob's fields.
_LEASED_JOB, _LEASED_TOKEN, _LEASED_EXPIRE_TIME = 1, 2, 3


@functools.lru_cache(maxsize=1024)
def _backoff_field(policy: Backoff) -> bytes:
    """Most jobs share a few policies: each is serialized once."""
    return len_field(JOB_BACKOFF, convert.backoff(policy).SerializeToString())


def _metadata_fields(metadata: Mapping[str, str]) -> bytes:
    return b"".join(
        len_field(JOB_METADATA, text_field(1, key) + text_field(2, value)) for key, value in metadata.items()
    )


def stored_part(
    job_id: str,
    queue: str,
    *,
    payload: bytes,
    payload_bytes: bytes,
    priority: int,
    max_attempts: int,
    metadata: Mapping[str, str],
    lease_ms: int,
    backoff: Backoff,
    idempotency_key: str,
    timeout_ms: int = 0,
    start_deadline_ms: int = 0,
    unique_key: str = "",
    depends_on: tuple[str, ...] = (),
    on_dependency_failure: int = 0,
    group_key: str = "",
) -> bytes:
    """The immutable part of a job, serialized once at enqueue. `payload` is a serialized Struct.

    Run for every job enqueued: written out with the tags precomputed.
    """
    job_bytes, queue_bytes = job_id.encode(), queue.encode()
    parts = [_ID_TAG, varint(len(job_bytes)), job_bytes, _QUEUE_TAG, varint(len(queue_bytes)), queue_bytes]
    if payload:
        parts += (_PAYLOAD_TAG, varint(len(payload)), payload)
    if payload_bytes:
        parts += (_PAYLOAD_BYTES_TAG, varint(len(payload_bytes)), payload_bytes)
    parts += (_PRIORITY_TAG, varint(priority), _MAX_ATTEMPTS_TAG, varint(max_attempts))
    if metadata:
        parts.append(_metadata_fields(metadata))
    if lease_ms:
        parts.append(duration_field(JOB_LEASE_DURATION, lease_ms))
    parts.append(_backoff_field(backoff))
    if idempotency_key:
        parts.append(text_field(JOB_IDEMPOTENCY_KEY, idempotency_key))
    if timeout_ms or start_deadline_ms or unique_key or depends_on or group_key:
        parts.append(
            _flow_fields(
                timeout_ms, start_deadline_ms, unique_key, depends_on, on_dependency_failure, group_key
            )
        )
    return b"".join(parts)


def _flow_fields(
    timeout_ms: int,
    start_deadline_ms: int,
    unique_key: str,
    depends_on: tuple[str, ...],
    on_dependency_failure: int,
    group_key: str,
) -> bytes:
    """The fields only some jobs have (each writes nothing when unset)."""
    return b"".join(
        (
            duration_field(JOB_TIMEOUT, timeout_ms),
            timestamp_field(JOB_START_DEADLINE, start_deadline_ms),
            text_field(JOB_UNIQUE_KEY, unique_key),
            *(text_field(JOB_DEPENDS_ON, parent) for parent in depends_on),
            varint_field(JOB_ON_DEPENDENCY_FAILURE, on_dependency_failure),
            text_field(JOB_GROUP_KEY, group_key),
        )
    )


_ID_TAG, _QUEUE_TAG = tag(JOB_ID, 2), tag(JOB_QUEUE, 2)
_PAYLOAD_TAG, _PAYLOAD_BYTES_TAG = tag(JOB_PAYLOAD, 2), tag(JOB_PAYLOAD_BYTES, 2)
_PRIORITY_TAG, _MAX_ATTEMPTS_TAG = tag(JOB_PRIORITY, 0), tag(JOB_MAX_ATTEMPTS, 0)


def errors_fields(raw_json: bytes) -> bytes:
    """The stored error history (JSON) as repeated JobError fields; b"" for none."""
    if not raw_json or raw_json == b"{}":
        return b""
    return b"".join(
        len_field(
            JOB_ERRORS,
            varint_field(1, int(entry["attempt"]))
            + text_field(2, str(entry["message"]))
            + timestamp_field(3, int(entry["time_ms"])),
        )
        for entry in json.loads(raw_json)
    )


def _errors_of_record(errors: list[ErrorEntry]) -> bytes:
    return b"".join(
        len_field(
            JOB_ERRORS,
            varint_field(1, e.attempt) + text_field(2, e.message) + timestamp_field(3, e.time_ms),
        )
        for e in errors
    )


def changing_part(record: JobRecord) -> bytes:
    """The fields of a stored job that change over its life, from its hash."""
    return b"".join(
        (
            varint_field(JOB_STATE, convert.STATE_TO_PROTO[record.state]),
            varint_field(JOB_ATTEMPTS, record.attempts),
            timestamp_field(JOB_CREATE_TIME, record.create_ms),
            timestamp_field(JOB_SCHEDULE_TIME, record.due_ms),
            timestamp_field(JOB_START_TIME, record.start_ms),
            timestamp_field(JOB_FINISH_TIME, record.finish_ms),
            len_field(JOB_RESULT, record.result) if record.result else b"",
            text_field(JOB_LAST_ERROR, record.last_error),
            _errors_of_record(record.errors),
            text_field(JOB_WORKER_ID, record.worker_id),
        )
    )


def stored_part_of(record: JobRecord) -> bytes:
    """The stored part of a job; for a job hash stored before wire bytes were (it holds
    payload, payload_bytes, metadata... instead), built from those fields: the migration
    (store/migrate.py) moves such jobs as they were enqueued."""
    if record.legacy is None:
        return record.wire
    fields = record.legacy
    return stored_part(
        record.id,
        record.queue,
        payload=fields.get(b"payload", b""),
        payload_bytes=fields.get(b"payload_bytes", b""),
        priority=int(record.priority),
        max_attempts=record.max_attempts,
        metadata=json.loads(fields[b"metadata"]) if fields.get(b"metadata") else {},
        lease_ms=record.lease_ms,
        backoff=record.backoff,
        idempotency_key=fields.get(b"idem_key", b"").decode(),
    )


def job_message(record: JobRecord) -> job_pb2.Job:
    """The Job a client sees for a stored job (GetStatus, ListJobs, WatchJob)."""
    job = job_pb2.Job.FromString(stored_part_of(record) + changing_part(record))
    if record.progress:
        percent, ms, message = record.progress.decode().split("|", 2)
        job.progress.percent = float(percent)
        job.progress.message = message
        job.progress.time.FromMilliseconds(int(ms))
    for line in record.logs.decode().splitlines():
        ms, _, text = line.partition("|")
        entry = job.logs.add(line=text)
        entry.time.FromMilliseconds(int(ms))
    return job


# The state field of every leased job, and the start and worker fields shared by one lease.
_ACTIVE = varint_field(JOB_STATE, job_pb2.JOB_STATE_ACTIVE)


def lease_constants(start_ms: int, worker_id: str) -> bytes:
    """The fields every job of one lease call has in common: ACTIVE, its start, its worker."""
    return _ACTIVE + timestamp_field(JOB_START_TIME, start_ms) + text_field(JOB_WORKER_ID, worker_id)


_ATTEMPTS = tag(JOB_ATTEMPTS, 0)


def leased_job(
    stored: bytes,
    shared: bytes,
    *,
    token: str,
    lease_expire_ms: int,
    attempts: int,
    create_ms: int,
    due_ms: int,
    last_error: bytes,
    errors: bytes,
) -> bytes:
    """One LeasedJob, serialized: the stored part, the changing fields, the token and deadline.

    The hottest function of delivery: written out rather than built from the field helpers.
    """
    job = (
        stored
        + shared
        + _ATTEMPTS
        + varint(attempts)
        + timestamp_field(JOB_CREATE_TIME, create_ms)
        + timestamp_field(JOB_SCHEDULE_TIME, due_ms)
    )
    if last_error:
        job += len_field(JOB_LAST_ERROR, last_error)
    if errors:
        job += errors_fields(errors)
    token_bytes = token.encode()
    return (
        len_field(_LEASED_JOB, job)
        + len_field(_LEASED_TOKEN, token_bytes)
        + timestamp_field(_LEASED_EXPIRE_TIME, lease_expire_ms)
    )
