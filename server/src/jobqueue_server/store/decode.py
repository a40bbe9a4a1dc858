"""Turns Redis replies (bytes) into records."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue_server.errors import InternalError
from jobqueue_server.store.layout import record_fields, split_errors, unescape_worker
from jobqueue_server.store.records import Backoff, ErrorEntry, JobRecord, JobState, Lease, LeasedJob, Priority

# What the lease script returns for each job after ulid and deadline, in order (lease-13.lua;
# tests/store/test_scripts.py holds the two together).
LEASE_FIELDS = ("wire", "attempts", "due_ms", "create_ms", "last_error", "errors")
_LEASE_WIDTH = 2 + len(LEASE_FIELDS)


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


def _int(value: bytes | int | None) -> int:
    return int(value) if value else 0


def errors_of(raw: bytes | None) -> list[ErrorEntry]:
    """A job's error history from its stored JSON."""
    if not raw or raw == b"{}":  # cjson encodes an empty table as an object
        return []
    return [ErrorEntry(int(e["attempt"]), str(e["message"]), int(e["time_ms"])) for e in json.loads(raw)]


def job_record(
    job_id: str, queue: str, record: bytes, wire: bytes | None, errors: bytes | None, result: bytes | None
) -> JobRecord:
    """A record from a job's entries in its queue's hashes (`jobs`, `wire`, `errors`, `result`)."""
    f = record_fields(record)
    history, last_error = split_errors(errors)
    return JobRecord(
        id=job_id,
        queue=queue,
        state=JobState(f["state"].decode()),
        priority=Priority(_int(f["priority"]) or Priority.NORMAL),
        wire=wire or b"",
        attempts=_int(f["attempts"]),
        max_attempts=_int(f["max_attempts"]),
        create_ms=_int(f["create_ms"]),
        due_ms=_int(f["due_ms"]),
        start_ms=_int(f["start_ms"]),
        finish_ms=_int(f["finish_ms"]),
        result=result or b"",
        last_error=last_error.decode(),
        errors=errors_of(history),
        lease_ms=_int(f["lease_ms"]),
        backoff=_backoff(f["backoff"]),
        worker_id=unescape_worker(f["worker"]),
        lease_expire_ms=_int(f["lease_expire_ms"]),
    )


def legacy_record(job_id: str, queue: str, f: Mapping[bytes, bytes]) -> JobRecord:
    """A record from a job hash of the previous layout (format 1), as HGETALL returns it; a hash
    stored before wire bytes existed keeps its fields in `legacy` (the migration builds them)."""
    return JobRecord(
        id=job_id,
        queue=queue,
        state=JobState(_text(f.get(b"state"))),
        priority=Priority(_int(f.get(b"priority")) or Priority.NORMAL),
        wire=f.get(b"wire", b""),
        attempts=_int(f.get(b"attempts")),
        max_attempts=_int(f.get(b"max_attempts")),
        create_ms=_int(f.get(b"create_ms")),
        due_ms=_int(f.get(b"due_ms")),
        start_ms=_int(f.get(b"start_ms")),
        finish_ms=_int(f.get(b"finish_ms")),
        result=f.get(b"result", b""),
        last_error=_text(f.get(b"last_error")),
        errors=errors_of(f.get(b"errors")),
        lease_ms=_int(f.get(b"lease_ms")),
        backoff=_backoff(f.get(b"backoff", b"")),
        worker_id=_text(f.get(b"worker")),
        lease_expire_ms=_int(f.get(b"lease_expire_ms")),
        legacy=None if b"wire" in f else dict(f),
    )


def lease_of(queue: str, token_base: str, worker_id: str, reply: Sequence[Any]) -> Lease:
    """The lease script's flat reply, read by position: the hot path of delivery."""
    if len(reply) < 2 or (len(reply) - 2) % _LEASE_WIDTH:
        raise InternalError(f"the lease script answered {len(reply)} values, not 2 + {_LEASE_WIDTH} per job")
    jobs = []
    prefix = queue + ":"
    for index, start in enumerate(range(2, len(reply), _LEASE_WIDTH), start=1):
        ulid, deadline, wire, attempts, due_ms, create_ms, last_error, errors = reply[
            start : start + _LEASE_WIDTH
        ]
        jobs.append(
            LeasedJob(
                prefix + ulid.decode(),
                f"{token_base}.{index}",
                int(deadline),
                wire,
                int(attempts),
                int(due_ms or 0),
                int(create_ms or 0),
                last_error,
                errors,
            )
        )
    return Lease(int(reply[0]), worker_id, jobs, int(reply[1]))


@functools.lru_cache(maxsize=1024)
def _backoff(raw: bytes) -> Backoff:
    return Backoff.decode(raw.decode()) if raw else Backoff()
