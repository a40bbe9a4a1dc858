"""extend-3.lua: moves an ACTIVE job's lease deadline, fenced by the lease token."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost
from jobqueue_server.store import ExtendOutcome, JobState, Settle, Store
from tests.store.helpers import leased_job, snapshot, ulid_of, zset


async def _extend(store: Store, job_id: str, token: str, lease_ms: int = 0) -> ExtendOutcome:
    (outcome,) = await store.extend([Settle(job_id, token, lease_ms=lease_ms)])
    assert isinstance(outcome, ExtendOutcome), outcome
    return outcome


async def test_extend_moves_the_deadline_in_the_active_zset_and_the_hash(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store)
    clock.advance(10_000)

    outcome = await _extend(store, leased.job_id, leased.token, lease_ms=45_000)

    assert outcome == ExtendOutcome(clock.ms + 45_000)
    assert await zset(redis, store.keys("q").active) == {ulid_of(leased.job_id): clock.ms + 45_000}
    job = await store.get(leased.job_id)
    assert (job.state, job.lease_expire_ms) == (JobState.ACTIVE, clock.ms + 45_000)


async def test_extend_without_a_length_uses_the_jobs_own_lease_length(
    store: Store, clock: ManualClock
) -> None:
    leased = await leased_job(store, lease_ms=90_000)
    clock.advance(1_000)

    assert await _extend(store, leased.job_id, leased.token) == ExtendOutcome(clock.ms + 90_000)


async def test_extend_without_any_length_uses_the_default(store: Store, clock: ManualClock) -> None:
    leased = await leased_job(store)
    clock.advance(1_000)

    outcome = await _extend(store, leased.job_id, leased.token)

    assert outcome == ExtendOutcome(clock.ms + store.config.default_lease_ms)


async def test_an_extended_lease_outlives_its_old_deadline(store: Store, clock: ManualClock) -> None:
    leased = await leased_job(store, lease_ms=1_000)
    clock.advance(900)
    await _extend(store, leased.job_id, leased.token, lease_ms=5_000)

    clock.advance(1_000)
    result = await store.sweep("q")

    assert result.requeued == 0
    assert await store.ack([Settle(leased.job_id, leased.token)]) == [None]


async def test_a_stale_token_cannot_extend_and_changes_nothing(store: Store, redis: Redis) -> None:
    leased = await leased_job(store)
    before = await snapshot(redis, store)

    (outcome,) = await store.extend([Settle(leased.job_id, "stale", lease_ms=60_000)])

    assert isinstance(outcome, LeaseLost)
    assert await snapshot(redis, store) == before


async def test_a_requeued_lease_cannot_be_extended(store: Store, redis: Redis, clock: ManualClock) -> None:
    leased = await leased_job(store, lease_ms=1_000)
    clock.advance(1_000)
    await store.sweep("q")
    before = await snapshot(redis, store)

    (outcome,) = await store.extend([Settle(leased.job_id, leased.token, lease_ms=60_000)])

    assert isinstance(outcome, LeaseLost)
    assert await snapshot(redis, store) == before


async def test_extend_of_an_unknown_job_is_not_found(store: Store) -> None:
    (outcome,) = await store.extend([Settle("q:01ARZ3NDEKTSV4RRFFQ69G5FAV", "token")])

    assert isinstance(outcome, JobNotFound)


async def test_one_call_extends_many_leases_in_order(store: Store, clock: ManualClock) -> None:
    first = await leased_job(store, "a")
    second = await leased_job(store, "b")

    outcomes = await store.extend(
        [
            Settle(first.job_id, first.token, lease_ms=1_000),
            Settle(second.job_id, "stale"),
            Settle(second.job_id, second.token, lease_ms=2_000),
        ]
    )

    assert outcomes[0] == ExtendOutcome(clock.ms + 1_000)
    assert isinstance(outcomes[1], LeaseLost)
    assert outcomes[2] == ExtendOutcome(clock.ms + 2_000)


async def test_one_call_naming_a_lease_twice_extends_it_by_the_last(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store)

    outcomes = await store.extend(
        [
            Settle(leased.job_id, leased.token, lease_ms=5_000),
            Settle(leased.job_id, leased.token, lease_ms=9_000),
        ]
    )

    assert outcomes == [ExtendOutcome(clock.ms + 5_000), ExtendOutcome(clock.ms + 9_000)]
    assert await zset(redis, store.keys("q").active) == {ulid_of(leased.job_id): clock.ms + 9_000}
    assert (await store.get(leased.job_id)).lease_expire_ms == clock.ms + 9_000
