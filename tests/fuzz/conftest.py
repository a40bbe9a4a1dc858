"""Fixtures for the fuzz suite: a keyspace to snapshot, and jobs seeded in every state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from jobqueue_server.store import NewJob, Settle, Store
from tests.fuzz.keyspace import Keyspace

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class Seeded:
    """One queue holding a job in each state; every token ever issued for them."""

    queue: str
    queued: str
    scheduled: str
    active: tuple[str, str]
    completed: str
    dead: str
    cancelled: str
    live_tokens: dict[str, str]  # active job id -> its current token
    stale_tokens: tuple[str, ...]  # tokens of leases that were settled

    @property
    def job_ids(self) -> tuple[str, ...]:
        return (self.queued, self.scheduled, *self.active, self.completed, self.dead, self.cancelled)

    @property
    def all_tokens(self) -> tuple[str, ...]:
        return (*self.live_tokens.values(), *self.stale_tokens)

    def is_live(self, job_id: str, token: str) -> bool:
        return self.live_tokens.get(job_id) == token


@pytest.fixture
def keyspace(redis: Redis, key_prefix: str) -> Keyspace:
    return Keyspace(redis, key_prefix)


@pytest.fixture
async def seeded(store: Store) -> Seeded:
    """Jobs nothing will move during a test: leases of an hour, a delay of a day."""
    queue = f"seed-{uuid.uuid4().hex[:8]}"
    ids = [o.job_id for o in (await store.enqueue([NewJob(queue=queue) for _ in range(6)])).outcomes]
    leased = await store.lease(queue, 4, HOUR_MS, "seed-worker")
    assert [r.job.id for r in leased] == ids[:4]
    (done, failed, active_a, active_b) = leased
    assert await store.ack([Settle(done.job.id, done.token)]) == [None]
    await store.fail([Settle(failed.job.id, failed.token, non_retryable=True)])
    await store.cancel(ids[4])
    scheduled = (await store.enqueue([NewJob(queue=queue, delay_ms=DAY_MS)])).outcomes[0].job_id
    return Seeded(
        queue=queue,
        queued=ids[5],
        scheduled=scheduled,
        active=(active_a.job.id, active_b.job.id),
        completed=done.job.id,
        dead=failed.job.id,
        cancelled=ids[4],
        live_tokens={active_a.job.id: active_a.token, active_b.job.id: active_b.token},
        stale_tokens=(done.token, failed.token),
    )
