"""Turns Redis replies (bytes) into records."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue_server.errors import InternalError
from jobqueue_server.ids import make_job_id
from jobqueue_server.store.records import Backoff, ErrorEntry, JobRecord, JobState, LeasedRecord, Priority

# The hash fields the lease script returns after ulid, token and deadline, in order: the
# HMGET of lease-4.lua (tests/store/test_scripts.py holds the two together).
LEASE_FIELDS = (
    "priority",
    "payload",
    "payload_bytes",
    "attempts",
    "max_attempts",
    "create_ms",
    "due_ms",
    "metadata",
    "lease_ms",
    "backoff",
    "idem_key",
    "errors",
    "start_ms",
    "worker",
    "last_error",
)
_LEASE_WIDTH = 3 + len(LEASE_FIELDS)


def encode_metadata(metadata: Mapping[str, str]) -> str:
    """Metadata is stored as a JSON object, or an empty string when there is none."""
    return json.dumps(dict(metadata), separators=(",", ":"), ensure_ascii=False) if metadata else ""


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


def _int(value: bytes | int | None) -> int:
    return int(value) if value else 0


def _errors(raw: bytes | None) -> list[ErrorEntry]:
    if not raw or raw == b"{}":  # cjson encodes an empty table as an object
        return []
    return [ErrorEntry(int(e["attempt"]), str(e["message"]), int(e["time_ms"])) for e in json.loads(raw)]


def job_record(job_id: str, queue: str, f: Mapping[bytes, bytes]) -> JobRecord:
    """A record from the job hash as HGETALL returns it."""
    return JobRecord(
        id=job_id,
        queue=queue,
        state=JobState(_text(f.get(b"state"))),
        priority=Priority(_int(f.get(b"priority")) or Priority.NORMAL),
        payload=f.get(b"payload", b""),
        payload_bytes=f.get(b"payload_bytes", b""),
        attempts=_int(f.get(b"attempts")),
        max_attempts=_int(f.get(b"max_attempts")),
        create_ms=_int(f.get(b"create_ms")),
        due_ms=_int(f.get(b"due_ms")),
        start_ms=_int(f.get(b"start_ms")),
        finish_ms=_int(f.get(b"finish_ms")),
        result=f.get(b"result", b""),
        last_error=_text(f.get(b"last_error")),
        errors=_errors(f.get(b"errors")),
        metadata=json.loads(f[b"metadata"]) if f.get(b"metadata") else {},
        lease_ms=_int(f.get(b"lease_ms")),
        backoff=_backoff(f.get(b"backoff", b"")),
        idempotency_key=_text(f.get(b"idem_key")),
        worker_id=_text(f.get(b"worker")),
        lease_expire_ms=_int(f.get(b"lease_expire_ms")),
    )


def leased_records(queue: str, reply: Sequence[Any]) -> list[LeasedRecord]:
    """Records from the lease script's flat reply.

    The hot path of delivery: fields are read by position rather than through a dict, and
    values every job of a queue shares (the backoff text) are parsed once.
    """
    if len(reply) % _LEASE_WIDTH:
        raise InternalError(f"the lease script answered {len(reply)} values, not {_LEASE_WIDTH} per job")
    leased = []
    for start in range(0, len(reply), _LEASE_WIDTH):
        (ulid, token, deadline, priority, payload, payload_bytes, attempts, max_attempts, create_ms, due_ms,
         metadata, lease_ms, backoff, idem_key, errors, start_ms, worker, last_error) = reply[
            start : start + _LEASE_WIDTH
        ]  # fmt: skip
        record = JobRecord(
            id=make_job_id(queue, ulid.decode()),
            queue=queue,
            state=JobState.ACTIVE,
            priority=_PRIORITIES.get(priority, Priority.NORMAL),
            payload=payload,
            payload_bytes=payload_bytes,
            attempts=int(attempts),
            max_attempts=_int(max_attempts),
            create_ms=_int(create_ms),
            due_ms=_int(due_ms),
            start_ms=_int(start_ms),
            last_error=_text(last_error),
            errors=_errors(errors),
            metadata=json.loads(metadata) if metadata else {},
            lease_ms=_int(lease_ms),
            backoff=_backoff(backoff),
            idempotency_key=_text(idem_key),
            worker_id=_text(worker),
            lease_expire_ms=int(deadline),
        )
        leased.append(LeasedRecord(record, token.decode(), record.lease_expire_ms))
    return leased


_PRIORITIES = {str(int(p)).encode(): p for p in Priority}


@functools.lru_cache(maxsize=1024)
def _backoff(raw: bytes) -> Backoff:
    return Backoff.decode(raw.decode()) if raw else Backoff()
