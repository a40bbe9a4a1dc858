"""The stored form of a job (format 2): what the scripts keep in a queue's hashes, read here.

A queue's jobs live in four hashes keyed by ulid (docs/state-machine.md, "Redis data model"):
`jobs` holds each job's record, one string of fields separated by '|' in the order of
RECORD_FIELDS (the positions lua/prelude.lua names); `wire` its wire bytes; `errors` its error
history and latest error; `result` a non-empty ack result.
"""

from __future__ import annotations

from jobqueue_server.store.records import Priority

#: The layout these scripts write; `<prefix>:format` holds it once a migration is done.
FORMAT = 2

#: The record's fields in order. Unset fields are empty; `has_errors` is 1 when the job has an
#: entry in the `errors` hash. The worker id comes last: it may hold any character.
RECORD_FIELDS = (
    "state",
    "attempts",
    "due_ms",
    "ready_ms",
    "start_ms",
    "finish_ms",
    "lease_expire_ms",
    "token",
    "has_errors",
    "create_ms",
    "priority",
    "max_attempts",
    "lease_ms",
    "backoff",
    "worker",
)
_SPLITS = len(RECORD_FIELDS) - 1


def record_fields(text: bytes) -> dict[str, bytes]:
    """A record's fields by name, every one present (empty when unset)."""
    values = text.split(b"|", _SPLITS)
    if len(values) != len(RECORD_FIELDS):
        raise ValueError(f"a job record has {len(values)} fields, not {len(RECORD_FIELDS)}")
    return dict(zip(RECORD_FIELDS, values, strict=True))


def spec(priority: Priority, max_attempts: int, lease_ms: int, backoff_text: str) -> str:
    """The record's fixed fields as enqueue-6.lua takes them: "priority|max_attempts|lease_ms|backoff"."""
    return f"{int(priority)}|{max_attempts}|{lease_ms}|{backoff_text}"


def split_errors(value: bytes | None) -> tuple[bytes, bytes]:
    """An `errors` hash value as (JSON history, latest error message); empty for none.

    The history comes first: cjson never writes a raw newline, so the first one ends it.
    """
    if not value:
        return b"", b""
    history, _, last_error = value.partition(b"\n")
    return history, last_error
