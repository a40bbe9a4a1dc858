"""migrate-4.lua and store/migrate.py: jobs stored one hash per job by the previous version move
into their queue's hashes at server start, in every state, with or without wire bytes, once."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from jobqueue_server.api.job_wire import stored_part_of
from jobqueue_server.clock import ManualClock
from jobqueue_server.errors import LeaseLost, StoreUnavailable
from jobqueue_server.runtime.app import connect_redis
from jobqueue_server.store import JobRecord, JobState, Settle, Store, StoreConfig
from jobqueue_server.store.decode import legacy_record
from jobqueue_server.store.keys import format_key
from jobqueue_server.store.migrate import LayoutTooNew, migrate
from tests.store.helpers import count_keys, snapshot
from tests.store.seed import LEGACY_ERRORS, LEGACY_STATES, seed_legacy_job
from tests.support import TestRedis, not_on_cluster

STATES = LEGACY_STATES

pytestmark = not_on_cluster("no version that stored format 1 could use a cluster: a cluster start skips it")


async def _as_stored_before(redis: Redis, store: Store, job_id: str) -> JobRecord:
    """The record the previous version read from the job's hash, its wire bytes built as the
    previous version built them when it sent the job."""
    queue, _, ulid = job_id.rpartition(":")
    fields = await redis.hgetall(store.keys(queue).job(ulid))
    record = legacy_record(job_id, queue, fields)
    record.wire, record.legacy = stored_part_of(record), None
    return record


async def _legacy_keys(redis: Redis, store: Store) -> int:
    return await count_keys(redis, store.keys("q").job_prefix + "*")


@pytest.mark.parametrize("with_wire", [True, False], ids=["with wire", "from before wire"])
async def test_jobs_of_the_previous_layout_move_whole_in_every_state(
    store: Store, redis: Redis, clock: ManualClock, with_wire: bool
) -> None:
    job_ids = [
        await seed_legacy_job(redis, store.config.key_prefix, s, clock.ms, with_wire=with_wire)
        for s in STATES
    ]
    before = [await _as_stored_before(redis, store, job_id) for job_id in job_ids]
    structures = {k: v for k, v in (await snapshot(redis, store)).items() if b":job:" not in k}

    done = await store.migrate(stored_part_of)

    assert (done.scanned, done.moved, done.built, done.gone, done.failed) == (
        True, len(STATES), 0 if with_wire else len(STATES), 0, 0,
    )  # fmt: skip
    assert [await store.get(job_id) for job_id in job_ids] == before
    assert await _legacy_keys(redis, store) == 0
    after = await snapshot(redis, store)
    assert {k: v for k, v in after.items() if k in structures} == structures  # lists and sets as they were
    assert await redis.get(format_key(store.config.key_prefix)) == b"2"


async def test_moved_jobs_go_on_through_their_transitions(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    prefix = store.config.key_prefix
    queued, active, dead, scheduled = [
        await seed_legacy_job(redis, prefix, state, clock.ms, with_wire=False)
        for state in (JobState.QUEUED, JobState.ACTIVE, JobState.DEAD, JobState.SCHEDULED)
    ]
    wire = (await _as_stored_before(redis, store, queued)).wire
    await store.migrate(stored_part_of)

    (leased,) = (await store.lease("q", 5, 0, "w")).jobs
    assert (leased.job_id, leased.wire, leased.attempts) == (queued, wire, 1)
    assert await store.ack([Settle(active, "legacy-token", result=b"r")]) == [None]
    (stale,) = await store.ack([Settle(active, "legacy-token")])
    assert isinstance(stale, LeaseLost)
    await store.retry(dead)
    (again,) = (await store.lease("q", 5, 0, "w")).jobs
    assert (again.job_id, again.attempts, again.last_error) == (dead, 1, b"boom")
    assert again.errors == (LEGACY_ERRORS % clock.ms).encode()
    await store.cancel(scheduled)
    (counts,) = await store.stats(["q"])
    assert (counts.queued, counts.active, counts.completed, counts.cancelled) == (0, 2, 1, 1)


async def test_a_second_start_reads_the_marker_and_scans_nothing(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    await seed_legacy_job(redis, store.config.key_prefix, JobState.QUEUED, clock.ms)
    assert (await store.migrate(stored_part_of)).moved == 1
    # A hash written now (by a server of the previous version, which must not run) stays.
    await seed_legacy_job(redis, store.config.key_prefix, JobState.QUEUED, clock.ms)

    again = await store.migrate(stored_part_of)

    assert (again.scanned, again.moved) == (False, 0)
    assert await _legacy_keys(redis, store) == 1


async def test_two_servers_starting_at_once_move_each_job_once(
    store: Store, redis: Redis, test_redis: TestRedis, clock: ManualClock
) -> None:
    prefix = store.config.key_prefix
    job_ids = [
        await seed_legacy_job(redis, prefix, STATES[n % len(STATES)], clock.ms, with_wire=n % 2 == 0)
        for n in range(300)
    ]
    before = [await _as_stored_before(redis, store, job_id) for job_id in job_ids]
    other = connect_redis(test_redis.url, timeout_s=2.0)
    try:
        second = Store(other, StoreConfig(key_prefix=prefix), clock=clock)
        first_run, second_run = await asyncio.gather(
            migrate(redis, store._scripts.migrate, prefix, stored_part_of, 2.0, batch=20),
            migrate(other, second._scripts.migrate, prefix, stored_part_of, 2.0, batch=20),
        )
    finally:
        await other.aclose()

    assert first_run.moved + second_run.moved == len(job_ids)
    assert first_run.built + second_run.built == len(job_ids) // 2  # those stored without wire bytes
    assert [await store.get(job_id) for job_id in job_ids] == before
    assert await redis.hlen(store.keys("q").jobs) == len(job_ids)


async def test_a_job_whose_wire_bytes_cannot_be_built_stays_and_the_next_start_retries(
    store: Store, redis: Redis, clock: ManualClock
) -> None:
    bad = await seed_legacy_job(redis, store.config.key_prefix, JobState.QUEUED, clock.ms, with_wire=False)
    good = await seed_legacy_job(redis, store.config.key_prefix, JobState.QUEUED, clock.ms, with_wire=False)
    expected = await _as_stored_before(redis, store, bad)

    def failing(record: JobRecord) -> bytes:
        if record.id == bad:
            raise ValueError("unreadable")
        return stored_part_of(record)

    done = await store.migrate(failing)

    assert (done.moved, done.failed) == (1, 1)
    assert (await store.get(good)).state == JobState.QUEUED
    assert await redis.get(format_key(store.config.key_prefix)) is None
    assert (await store.migrate(stored_part_of)).moved == 1
    assert await store.get(bad) == expected
    assert await redis.get(format_key(store.config.key_prefix)) == b"2"


async def test_a_layout_newer_than_the_servers_is_refused(store: Store, redis: Redis) -> None:
    await redis.set(format_key(store.config.key_prefix), 3)

    with pytest.raises(LayoutTooNew, match="newer version"):
        await store.migrate(stored_part_of)


async def test_a_start_on_an_empty_redis_writes_nothing(store: Store, redis: Redis) -> None:
    done = await store.migrate(stored_part_of)

    assert not done.scanned
    assert await count_keys(redis, f"{store.config.key_prefix}:*") == 0


async def test_hashes_of_other_prefixes_and_queues_with_colons_are_told_apart(
    make_store: Any, redis: Redis, key_prefix: str, clock: ManualClock
) -> None:
    store = cast(Store, make_store())
    mine = await seed_legacy_job(redis, key_prefix, JobState.QUEUED, clock.ms, queue="a:b")
    other_prefix = key_prefix + "x"
    await seed_legacy_job(redis, other_prefix, JobState.QUEUED, clock.ms)

    assert (await store.migrate(stored_part_of)).moved == 1

    assert (await store.get(mine)).queue == "a:b"
    assert await count_keys(redis, f"{other_prefix}:*:job:*") == 1


async def test_an_unreachable_redis_fails_the_start_with_store_unavailable(key_prefix: str) -> None:
    unreachable = connect_redis("redis://127.0.0.1:1", timeout_s=0.5)
    try:
        store = Store(unreachable, StoreConfig(key_prefix=key_prefix, command_timeout_ms=500))
        with pytest.raises(StoreUnavailable):
            await store.migrate(stored_part_of)
    finally:
        await unreachable.aclose()
