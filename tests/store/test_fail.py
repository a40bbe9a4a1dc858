"""fail-8.lua: ACTIVE -> SCHEDULED (backoff) or DEAD, fenced by the lease token."""

from __future__ import annotations

import math

import pytest
from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import JobNotFound, LeaseLost
from jobqueue_server.store import Backoff, FailOutcome, JobState, NewJob, Settle, Store
from tests.store.conftest import MakeStore
from tests.store.helpers import (
    enqueue,
    enqueue_one,
    fail_leased,
    job_fields,
    lease_one,
    leased_job,
    snapshot,
    ulid_of,
    zset,
)

NO_JITTER = Backoff(initial_ms=100, max_ms=2_000, multiplier=3.0, jitter=0.0)


async def _advance_to_due_and_promote(store: Store, clock: ManualClock, outcome: FailOutcome) -> None:
    clock.advance(outcome.due_ms - clock.ms)
    await store.sweep("q")


async def test_fail_schedules_a_retry_after_the_initial_backoff(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store, backoff=NO_JITTER)

    outcome = await fail_leased(store, leased, "connection refused")

    assert outcome == FailOutcome(JobState.SCHEDULED, clock.ms + 100)
    keys = store.keys("q")
    assert await zset(redis, keys.scheduled) == {ulid_of(leased.job_id): clock.ms + 100}
    assert await redis.zcard(keys.active) == 0
    fields = await job_fields(redis, store, leased.job_id)
    assert (fields["state"], fields["due_ms"], fields["last_error"]) == (
        "scheduled",
        str(clock.ms + 100),
        "connection refused",
    )
    assert not {"token", "lease_expire_ms", "worker"} & fields.keys()


async def test_backoff_grows_exponentially_and_is_capped_at_the_maximum(
    store: Store, clock: ManualClock
) -> None:
    await enqueue_one(store, max_attempts=6, backoff=NO_JITTER)
    delays = []

    for _ in range(5):
        outcome = await fail_leased(store, await lease_one(store))
        delays.append(outcome.due_ms - clock.ms)
        await _advance_to_due_and_promote(store, clock, outcome)

    assert delays == [100, 300, 900, 2_000, 2_000]


async def test_jitter_keeps_each_delay_within_the_jitter_fraction_below_the_backoff(
    store: Store, clock: ManualClock
) -> None:
    backoff = Backoff(initial_ms=10_000, max_ms=60_000, multiplier=2.0, jitter=0.5)
    await enqueue(store, *(NewJob(queue="q", backoff=backoff) for _ in range(30)))

    delays = [
        (await fail_leased(store, leased)).due_ms - clock.ms
        for leased in (await store.lease("q", 30, 0, "w")).jobs
    ]

    assert all(5_000 <= delay <= 10_000 for delay in delays), delays
    assert len(set(delays)) > 1, "jitter spreads retries out"


@pytest.mark.parametrize(
    ("draw", "expected_delay"), [(0.0, 10_000), (0.999999, math.floor(10_000 * (1 - 0.5 * 0.999999)))]
)
async def test_jitter_takes_off_the_drawn_fraction_of_the_jitter(
    store: Store, clock: ManualClock, draw: float, expected_delay: int
) -> None:
    # The store draws the jitter fraction from the injected clock: pin the draw.
    clock.pin_jitter(draw)
    leased = await leased_job(store, backoff=Backoff(initial_ms=10_000, jitter=0.5))

    assert (await fail_leased(store, leased)).due_ms == clock.ms + expected_delay


@pytest.mark.parametrize("retry_delay_ms", [0, 7, 500_000])
async def test_an_explicit_retry_delay_overrides_the_backoff_policy(
    store: Store, redis: Redis, clock: ManualClock, retry_delay_ms: int
) -> None:
    leased = await leased_job(store, backoff=NO_JITTER)

    outcome = await fail_leased(store, leased, retry_delay_ms=retry_delay_ms)

    assert outcome == FailOutcome(JobState.SCHEDULED, clock.ms + retry_delay_ms)
    assert await zset(redis, store.keys("q").scheduled) == {ulid_of(leased.job_id): clock.ms + retry_delay_ms}


async def test_the_last_attempt_fails_to_dead_with_the_full_error_history(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    job_id = await enqueue_one(store, max_attempts=3, backoff=NO_JITTER)
    failures = []
    for attempt in (1, 2, 3):
        outcome = await fail_leased(store, await lease_one(store), f"error {attempt}")
        failures.append((attempt, f"error {attempt}", clock.ms))
        if attempt < 3:
            await _advance_to_due_and_promote(store, clock, outcome)

    assert outcome == FailOutcome(JobState.DEAD, 0)
    job = await store.get(job_id)
    assert [(e.attempt, e.message, e.time_ms) for e in job.errors] == failures
    assert (job.state, job.attempts, job.finish_ms, job.last_error) == (JobState.DEAD, 3, clock.ms, "error 3")
    keys = store.keys("q")
    assert await zset(redis, keys.dead) == {ulid_of(job_id): clock.ms}
    assert await redis.zcard(keys.scheduled) == await redis.zcard(keys.active) == 0


async def test_a_non_retryable_failure_is_dead_at_once(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    leased = await leased_job(store, max_attempts=5)

    outcome = await fail_leased(store, leased, "bad input", non_retryable=True, retry_delay_ms=10)

    assert outcome == FailOutcome(JobState.DEAD, 0)
    assert await zset(redis, store.keys("q").dead) == {ulid_of(leased.job_id): clock.ms}
    job = await store.get(leased.job_id)
    assert (job.state, job.attempts, [e.message for e in job.errors]) == (JobState.DEAD, 1, ["bad input"])


async def test_a_stale_token_cannot_fail_and_changes_nothing(store: Store, redis: Redis) -> None:
    leased = await leased_job(store)
    before = await snapshot(redis, store)

    (outcome,) = await store.fail([Settle(leased.job_id, leased.token + "-stale", error="e")])

    assert isinstance(outcome, LeaseLost)
    assert await snapshot(redis, store) == before


async def test_a_job_already_acked_cannot_be_failed_with_its_old_token(store: Store, redis: Redis) -> None:
    leased = await leased_job(store)
    await store.ack([Settle(leased.job_id, leased.token)])
    before = await snapshot(redis, store)

    (outcome,) = await store.fail([Settle(leased.job_id, leased.token, error="late")])

    assert isinstance(outcome, LeaseLost)
    assert await snapshot(redis, store) == before


async def test_fail_of_an_unknown_job_is_not_found(store: Store) -> None:
    (outcome,) = await store.fail([Settle("q:01ARZ3NDEKTSV4RRFFQ69G5FAV", "token", error="e")])

    assert isinstance(outcome, JobNotFound)


async def test_the_error_history_keeps_only_the_newest_entries(
    make_store: MakeStore, clock: ManualClock
) -> None:
    store = make_store(max_errors_kept=2)
    job_id = await enqueue_one(store, max_attempts=4, backoff=NO_JITTER)

    for attempt in (1, 2, 3):
        outcome = await fail_leased(store, await lease_one(store), f"error {attempt}")
        await _advance_to_due_and_promote(store, clock, outcome)

    job = await store.get(job_id)
    assert [(e.attempt, e.message) for e in job.errors] == [(2, "error 2"), (3, "error 3")]


async def test_one_call_fails_many_jobs_across_queues_in_order(store: Store) -> None:
    job_ids = await enqueue(store, NewJob(queue="a"), NewJob(queue="b", max_attempts=1), NewJob(queue="a"))
    tokens = {r.job_id: r.token for q in ("a", "b") for r in (await store.lease(q, 10, 0, "w")).jobs}
    items = [Settle(job_id, tokens[job_id], error="e", retry_delay_ms=5) for job_id in job_ids]
    items.insert(1, Settle(job_ids[0], "stale", error="e"))

    outcomes = await store.fail(items)

    assert [type(o) for o in outcomes] == [FailOutcome, LeaseLost, FailOutcome, FailOutcome]
    assert [o.state for o in outcomes if isinstance(o, FailOutcome)] == [
        JobState.SCHEDULED,
        JobState.DEAD,
        JobState.SCHEDULED,
    ]


async def test_one_call_naming_a_job_twice_fails_it_once(store: Store, redis: Redis) -> None:
    leased = await leased_job(store, max_attempts=3)
    fail = Settle(leased.job_id, leased.token, error="boom", retry_delay_ms=0)

    first, second = await store.fail([fail, fail])

    assert isinstance(first, FailOutcome) and isinstance(second, LeaseLost)
    assert len((await store.get(leased.job_id)).errors) == 1
