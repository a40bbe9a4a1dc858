"""Turns Redis replies (bytes) into records."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue_server.ids import make_job_id
from jobqueue_server.store.records import Backoff, ErrorEntry, JobRecord, JobState, LeasedRecord, Priority

# The hash fields the lease script returns after ulid, token and deadline, in order.
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
    backoff = _text(f.get(b"backoff"))
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
        backoff=Backoff.decode(backoff) if backoff else Backoff(),
        idempotency_key=_text(f.get(b"idem_key")),
        worker_id=_text(f.get(b"worker")),
        lease_expire_ms=_int(f.get(b"lease_expire_ms")),
    )


def leased_records(queue: str, reply: Sequence[Any]) -> list[LeasedRecord]:
    """Records from the lease script's flat reply."""
    leased = []
    for start in range(0, len(reply), _LEASE_WIDTH):
        ulid, token, deadline = reply[start], reply[start + 1], int(reply[start + 2])
        fields = dict(
            zip((f.encode() for f in LEASE_FIELDS), reply[start + 3 : start + _LEASE_WIDTH], strict=True)
        )
        fields[b"state"] = JobState.ACTIVE.encode()
        record = job_record(make_job_id(queue, ulid.decode()), queue, fields)
        record.lease_expire_ms = deadline
        leased.append(LeasedRecord(record, token.decode(), deadline))
    return leased
