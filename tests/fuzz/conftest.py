"""Fixtures for the fuzz suite: a keyspace to snapshot, and jobs seeded in every state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import validation
from jobqueue_server.config import ServerSettings
from jobqueue_server.ids import new_ulid
from jobqueue_server.runtime.app import limits
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


def _new_job(store: Store, queue: str, delay_ms: int = 0) -> NewJob:
    """A job as the service would enqueue it: validated, with its wire bytes."""
    request = svc.EnqueueRequest(queue=queue)
    if delay_ms:
        request.delay.FromMilliseconds(delay_ms)
    return validation.new_job(request, limits(ServerSettings()), new_ulid(store.clock.now_ms()))


@pytest.fixture
async def seeded(store: Store) -> Seeded:
    """Jobs nothing will move during a test: leases of an hour, a delay of a day."""
    queue = f"seed-{uuid.uuid4().hex[:8]}"
    ids = [o.job_id for o in (await store.enqueue([_new_job(store, queue) for _ in range(6)])).outcomes]
    leased = (await store.lease(queue, 4, HOUR_MS, "seed-worker")).jobs
    assert [r.job_id for r in leased] == ids[:4]
    (done, failed, active_a, active_b) = leased
    assert await store.ack([Settle(done.job_id, done.token)]) == [None]
    await store.fail([Settle(failed.job_id, failed.token, non_retryable=True)])
    await store.cancel(ids[4])
    scheduled = (await store.enqueue([_new_job(store, queue, DAY_MS)])).outcomes[0].job_id
    return Seeded(
        queue=queue,
        queued=ids[5],
        scheduled=scheduled,
        active=(active_a.job_id, active_b.job_id),
        completed=done.job_id,
        dead=failed.job_id,
        cancelled=ids[4],
        live_tokens={active_a.job_id: active_a.token, active_b.job_id: active_b.token},
        stale_tokens=(done.token, failed.token),
    )
