"""Raw-key seeders: a job written straight into Redis in a given state, as the scripts would
have left it, so a transition can be tested from exactly that state without running others."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from jobqueue_server.ids import make_job_id, new_ulid
from jobqueue_server.store import Backoff, JobState, Priority, Store

# Where each state keeps its job, and the hash field that scores it there.
_FINISHED = {JobState.COMPLETED: "completed", JobState.DEAD: "dead", JobState.CANCELLED: "cancelled"}


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
    """Writes one job's hash and puts its ulid where `state` keeps it; returns the job id.

    Times default to the store clock's now. Extra `fields` are written to the hash as given.
    """
    now = store.clock.now_ms()
    ulid = new_ulid(now) if "ulid" not in fields else str(fields.pop("ulid"))
    keys = store.keys(queue)
    values: dict[str, Any] = {
        "state": str(state),
        "priority": int(priority),
        "create_ms": now,
        "due_ms": due_ms or now,
        "wire": b"seeded",
        "attempts": attempts,
        "max_attempts": max_attempts,
        "backoff": Backoff().encode(),
        "lease_ms": 0,
        **fields,
    }
    if errors:
        values["errors"] = errors
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(f"{store.config.key_prefix}:queues", queue)
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
        pipe.hset(keys.job(ulid), mapping=values)
        await pipe.execute()
    return make_job_id(queue, ulid)
