"""Raw-key seeders: a job written straight into Redis in a given state, as the scripts would
have left it, so a transition can be tested from exactly that state without running others."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2
from redis.asyncio import Redis

from jobqueue_server.api import job_wire
from jobqueue_server.ids import make_job_id, new_ulid
from jobqueue_server.store import Backoff, JobState, Priority, Store
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.layout import RECORD_FIELDS

#: The states the previous layout stored (it had no dependencies, so no WAITING).
LEGACY_STATES = [state for state in JobState if state is not JobState.WAITING]

# Where each state keeps its job, and the hash field that scores it there.
_FINISHED = {JobState.COMPLETED: "completed", JobState.DEAD: "dead", JobState.CANCELLED: "cancelled"}


def record_text(fields: dict[str, Any]) -> str:
    """A job record (the `jobs` hash's value) from its fields by name; unnamed ones are unset."""
    unknown = fields.keys() - set(RECORD_FIELDS)
    assert not unknown, f"not record fields: {unknown}"
    return "|".join(str(fields.get(name, "")) for name in RECORD_FIELDS)


async def seed_job(
    redis: Redis,
    store: Store,
    state: JobState,
    *,
    queue: str = "q",
    priority: Priority = Priority.NORMAL,
    attempts: int = 0,
    max_attempts: int = 3,
    token: str = "",
    lease_expire_ms: int = 0,
    due_ms: int = 0,
    finish_ms: int = 0,
    errors: str = "",
    **fields: Any,
) -> str:
    """Writes one job's entries and puts its ulid where `state` keeps it; returns the job id.

    Times default to the store clock's now. Extra `fields` are record fields, written as given.
    """
    now = store.clock.now_ms()
    ulid = new_ulid(now) if "ulid" not in fields else str(fields.pop("ulid"))
    keys = store.keys(queue)
    values: dict[str, Any] = {
        "state": str(state),
        "priority": int(priority),
        "create_ms": now,
        "due_ms": due_ms or now,
        "attempts": attempts,
        "max_attempts": max_attempts,
        "backoff": Backoff().encode(),
        "lease_ms": 0,
        "has_errors": int(bool(errors)),
        **fields,
    }
    # The registry is a key of its own (another slot on a cluster): not in the transaction.
    await redis.sadd(f"{store.config.key_prefix}:queues", queue)
    async with redis.pipeline(transaction=True) as pipe:
        if state is JobState.QUEUED:
            values["ready_ms"] = due_ms or now
            ready = {
                Priority.HIGH: keys.ready_high,
                Priority.NORMAL: keys.ready_normal,
                Priority.LOW: keys.ready_low,
            }
            pipe.lpush(ready[priority], ulid)
        elif state is JobState.SCHEDULED:
            pipe.zadd(keys.scheduled, {ulid: due_ms or now})
        elif state is JobState.ACTIVE:
            deadline = lease_expire_ms or now + 30_000
            values |= {
                "token": token or "seed-token",
                "lease_expire_ms": deadline,
                "start_ms": now,
                "worker": "seed",
            }
            pipe.zadd(keys.active, {ulid: deadline})
        else:
            values["finish_ms"] = finish_ms or now
            pipe.zadd(getattr(keys, _FINISHED[state]), {ulid: finish_ms or now})
        pipe.hset(keys.jobs, ulid, record_text(values))
        pipe.hset(keys.wire, ulid, "seeded")
        if errors:  # the history, a newline, the latest message
            history = json.loads(errors)
            pipe.hset(keys.errors, ulid, f"{errors}\n{history[-1]['message'] if history else ''}")
        await pipe.execute()
    return make_job_id(queue, ulid)


async def update_record(redis: Redis, keys: QueueKeys, ulid: str, **changes: Any) -> None:
    """Rewrites fields of a stored job's record, as a script that left no trace would have."""
    raw = await redis.hget(keys.jobs, ulid)
    assert raw is not None, f"job {ulid} has no record"
    values = dict(zip(RECORD_FIELDS, raw.decode().split("|", len(RECORD_FIELDS) - 1), strict=True))
    await redis.hset(keys.jobs, ulid, record_text(values | changes))


# -- jobs of the previous layout (format 1: one hash per job), as the scripts of that version
# -- left them, for the migration's tests

LEGACY_ERRORS = '[{"attempt":5,"message":"boom","time_ms":%d}]'


def _struct(values: dict[str, Any]) -> bytes:
    message = struct_pb2.Struct()
    message.update(values)
    return message.SerializeToString()


def legacy_payload() -> bytes:
    return _struct({"to": "ada@example.com", "n": 3})


def _legacy_fields(job_id: str, queue: str, state: JobState, now: int, with_wire: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "state": str(state), "priority": 3, "create_ms": now, "due_ms": now, "attempts": 0,
        "max_attempts": 5, "backoff": Backoff(250, 9_000, 3.0, 0.0).encode(), "lease_ms": 45_000,
    }  # fmt: skip
    immutable = {"payload": legacy_payload(), "payload_bytes": b"\x00raw"}
    if with_wire:
        fields["wire"] = job_wire.stored_part(
            job_id, queue, payload=immutable["payload"], payload_bytes=immutable["payload_bytes"],
            priority=3, max_attempts=5, metadata={"tenant": "t-1"}, lease_ms=45_000,
            backoff=Backoff(250, 9_000, 3.0, 0.0), idempotency_key=f"order-{state}",
        )  # fmt: skip
    else:
        fields |= immutable | {"metadata": json.dumps({"tenant": "t-1"}), "idem_key": f"order-{state}"}
    if state is JobState.SCHEDULED:
        fields["due_ms"] = now + 60_000
        return fields
    fields["ready_ms"] = now
    if state in (JobState.QUEUED, JobState.CANCELLED):
        return fields | ({"finish_ms": now} if state is JobState.CANCELLED else {})
    fields |= {"attempts": 1, "start_ms": now}
    if state is JobState.ACTIVE:
        return fields | {"token": "legacy-token", "lease_expire_ms": now + 60_000, "worker": "old|worker"}
    if state is JobState.COMPLETED:
        return fields | {"finish_ms": now, "result": _struct({"ok": True})}
    return fields | {"attempts": 5, "finish_ms": now, "errors": LEGACY_ERRORS % now, "last_error": "boom"}


async def seed_legacy_job(
    redis: Redis, prefix: str, state: JobState, now: int, *, queue: str = "q", with_wire: bool = True
) -> str:
    """Writes one job as the previous version stored it (with its wire bytes, or from before they
    existed: payload, payload_bytes, metadata and idem_key fields); returns its id."""
    keys = QueueKeys.of(prefix, queue)
    ulid = new_ulid(now)
    job_id = make_job_id(queue, ulid)
    fields = _legacy_fields(job_id, queue, state, now, with_wire)
    await redis.sadd(f"{prefix}:queues", queue)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.job(ulid), mapping=fields)
        if state is JobState.QUEUED:
            pipe.lpush(keys.ready_high, ulid)
        elif state is JobState.SCHEDULED:
            pipe.zadd(keys.scheduled, {ulid: fields["due_ms"]})
        elif state is JobState.ACTIVE:
            pipe.zadd(keys.active, {ulid: fields["lease_expire_ms"]})
        else:
            pipe.zadd(getattr(keys, _FINISHED[state]), {ulid: fields["finish_ms"]})
        await pipe.execute()
    return job_id
