"""Turns Redis replies (bytes) into records."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue_server.errors import InternalError
from jobqueue_server.store.records import Backoff, ErrorEntry, JobRecord, JobState, Lease, LeasedJob, Priority

# The hash fields the lease script returns after ulid and deadline, in order: the HMGET of
# lease-4.lua (tests/store/test_scripts.py holds the two together).
LEASE_FIELDS = ("wire", "attempts", "lease_ms", "due_ms", "create_ms", "last_error", "errors")
# ulid, deadline, then every field but lease_ms (used inside the script only).
_LEASE_WIDTH = 2 + len(LEASE_FIELDS) - 1


def _text(value: bytes | None) -> str:
    return value.decode() if value else ""


def _int(value: bytes | int | None) -> int:
    return int(value) if value else 0


def errors_of(raw: bytes | None) -> list[ErrorEntry]:
    """A job's error history from its stored JSON."""
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
    if not reply or (len(reply) - 1) % _LEASE_WIDTH:
        raise InternalError(f"the lease script answered {len(reply)} values, not 1 + {_LEASE_WIDTH} per job")
    jobs = []
    prefix = queue + ":"
    for index, start in enumerate(range(1, len(reply), _LEASE_WIDTH), start=1):
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
    return Lease(int(reply[0]), worker_id, jobs)


_PRIORITIES = {str(int(p)).encode(): p for p in Priority}


@functools.lru_cache(maxsize=1024)
def _backoff(raw: bytes) -> Backoff:
    return Backoff.decode(raw.decode()) if raw else Backoff()
