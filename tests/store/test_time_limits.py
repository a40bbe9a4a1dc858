"""A job's time limits in the scripts: a timeout caps its leases (extends included), and a lease
that runs to it is an attempt that timed out, said in the error and on the stops channel; a
start deadline cancels the job when no worker leased it by then, and no longer applies once one
did."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import JobState, Settle, Store
from tests.store.helpers import enqueue_one, lease_one, plain_pubsub


async def test_a_timeout_caps_the_lease_and_extends_and_its_expiry_is_a_timed_out_attempt(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, timeout_ms=2_000, max_attempts=3)
    leased = await lease_one(store, lease_ms=30_000)
    started = clock.now_ms()
    assert leased.lease_expire_ms == started + 2_000

    clock.advance(1_500)
    (extended,) = await store.extend([Settle(job_id, leased.token, lease_ms=30_000)])
    assert extended.lease_expire_ms == started + 2_000  # type: ignore[union-attr]

    clock.advance(600)
    async with plain_pubsub(redis) as pubsub:
        await pubsub.subscribe(f"{store.config.key_prefix}:stops")
        await pubsub.get_message(timeout=1.0)
        result = await store.sweep("q")
        stop = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)

    assert result.requeued == 1
    assert stop is not None and stop["data"] == f"{job_id}|{leased.token}|timed_out".encode()
    job = await store.get(job_id)
    assert job.state is JobState.QUEUED and job.last_error == "timed out after 2 s"


async def test_a_lease_shorter_than_the_timeout_expires_as_a_plain_lost_lease(
    store: Store, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, timeout_ms=60_000)
    leased = await lease_one(store, lease_ms=1_000)
    assert leased.lease_expire_ms == clock.now_ms() + 1_000
    clock.advance(1_500)

    await store.sweep("q")

    assert (await store.get(job_id)).last_error == "lease expired"


async def test_a_job_not_leased_by_its_start_deadline_is_cancelled_with_the_reason(
    store: Store, clock: ManualClock
) -> None:
    late = await enqueue_one(store, start_deadline_ms=clock.now_ms() + 1_000)
    later = await enqueue_one(store, start_deadline_ms=clock.now_ms() + 5_000, delay_ms=10_000)
    clock.advance(1_001)

    result = await store.sweep("q")

    job = await store.get(late)
    assert job.state is JobState.CANCELLED and job.last_error == "not started before its start deadline"
    assert (await store.get(later)).state is JobState.SCHEDULED
    assert result.next_due_ms == clock.now_ms() + 3_999  # the other's start deadline comes first
    clock.advance(4_000)
    await store.sweep("q")
    assert (await store.get(later)).state is JobState.CANCELLED
    assert (await store.lease("q", 10, 0, "w")).jobs == []


async def test_a_start_deadline_no_longer_applies_once_the_job_was_leased(
    store: Store, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, start_deadline_ms=clock.now_ms() + 1_000)
    leased = await lease_one(store, lease_ms=60_000)
    clock.advance(2_000)

    await store.sweep("q")
    assert (await store.get(job_id)).state is JobState.ACTIVE
    (outcome,) = await store.ack([Settle(job_id, leased.token)])
    assert outcome is None
