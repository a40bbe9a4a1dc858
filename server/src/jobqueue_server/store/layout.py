"""The stored form of a job (format 2): what the scripts keep in a queue's hashes, read here.

A queue's jobs live in four hashes keyed by ulid (docs/state-machine.md, "Redis data model"):
`jobs` holds each job's record, one string of fields separated by '|' in the order of
RECORD_FIELDS (the positions lua/prelude.lua names); `wire` its wire bytes; `errors` its error
history and latest error; `result` a non-empty ack result.
"""

from __future__ import annotations

import re

from jobqueue_server.store.records import Priority

#: The layout these scripts write; `<prefix>:format` holds it once a migration is done.
FORMAT = 2

#: The record's fields in order. Unset fields are empty; `has_errors` is 1 when the job has an
#: entry in the `errors` hash; the worker id is escaped (unescape_worker). The fields lease and
#: ack change come first: those scripts match only the head of a record.
RECORD_FIELDS = (
    "state",
    "token",
    "worker",
    "lease_expire_ms",
    "start_ms",
    "finish_ms",
    "attempts",
    "has_errors",
    "due_ms",
    "ready_ms",
    "create_ms",
    "priority",
    "lease_ms",
    "max_attempts",
    "backoff",
)


def record_fields(text: bytes) -> dict[str, bytes]:
    """A record's fields by name, every one present (empty when unset)."""
    values = text.split(b"|")
    if len(values) != len(RECORD_FIELDS):
        raise ValueError(f"a job record has {len(values)} fields, not {len(RECORD_FIELDS)}")
    return dict(zip(RECORD_FIELDS, values, strict=True))


def spec(priority: Priority, lease_ms: int, max_attempts: int, backoff_text: str) -> str:
    """The record's last fields as enqueue-12.lua takes them: "priority|lease_ms|max_attempts|backoff"."""
    return f"{int(priority)}|{lease_ms}|{max_attempts}|{backoff_text}"


_ESCAPED = re.compile(rb"%(25|7C)")


def unescape_worker(raw: bytes) -> str:
    """A worker id as the client sent it (a record holds '%' as %25 and '|' as %7C)."""
    return _ESCAPED.sub(lambda m: b"%" if m[1] == b"25" else b"|", raw).decode()


def split_errors(value: bytes | None) -> tuple[bytes, bytes]:
    """An `errors` hash value as (JSON history, latest error message); empty for none.

    The history comes first: cjson never writes a raw newline, so the first one ends it.
    """
    if not value:
        return b"", b""
    history, _, last_error = value.partition(b"\n")
    return history, last_error
