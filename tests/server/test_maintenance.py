"""The maintenance loop's planning: when the next pass runs, from what each pass reports.

Driven by ManualClocks, one for the scripts (Redis's time) and one for the server's own
clock, with passes run directly: no sleeping, no waiting for timers.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.maintenance import Maintenance
from jobqueue_server.runtime.app import connect_redis
from jobqueue_server.store import JobState, Store, StoreConfig
from jobqueue_server.store.signals import QueueSignals
from tests.store.seed import seed_job

INTERVAL_MS = 60_000
# The server's own clock runs this far behind Redis's.
SKEW_MS = 7_000


def _loop(store: Store, redis: Redis, local: ManualClock) -> tuple[Maintenance, QueueSignals]:
    signals = QueueSignals(redis, store.config.key_prefix)
    return Maintenance(store, signals, INTERVAL_MS / 1000, clock=local), signals


def _clocks() -> tuple[ManualClock, ManualClock]:
    redis_clock = ManualClock()
    return redis_clock, ManualClock(start_ms=redis_clock.ms - SKEW_MS)


async def test_with_nothing_due_the_next_pass_is_one_interval_away(redis: Redis, key_prefix: str) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    await seed_job(redis, store, JobState.QUEUED)
    maintenance, _ = _loop(store, redis, local)

    await maintenance.sweep_once()

    assert maintenance.next_sweep_ms == local.ms + INTERVAL_MS


async def test_the_next_pass_is_at_the_earliest_due_time_in_the_servers_own_clock(
    redis: Redis, key_prefix: str
) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    await seed_job(redis, store, JobState.SCHEDULED, due_ms=redis_clock.ms + 5_000)
    await seed_job(redis, store, JobState.ACTIVE, lease_expire_ms=redis_clock.ms + 3_000, queue="other")
    maintenance, _ = _loop(store, redis, local)

    await maintenance.sweep_once()

    # Redis's +3 s is the local clock's +3 s as well: the skew learnt from the pass is taken off.
    assert maintenance.next_sweep_ms == local.ms + 3_000


async def test_a_pass_that_stops_at_its_batch_size_plans_the_next_at_once(
    redis: Redis, key_prefix: str
) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix, sweep_batch=2), clock=redis_clock)
    for _ in range(5):
        await seed_job(redis, store, JobState.SCHEDULED, due_ms=redis_clock.ms - 1)
    maintenance, _ = _loop(store, redis, local)

    passes = 0
    while True:
        await maintenance.sweep_once()
        passes += 1
        if maintenance.next_sweep_ms > local.ms:
            break
        assert maintenance.next_sweep_ms == local.ms, "more to do: go again at once"

    assert passes == 3  # 2 + 2 + 1 promoted
    assert (await store.stats(["q"]))[0].queued == 5
    assert maintenance.next_sweep_ms == local.ms + INTERVAL_MS


async def test_promoted_jobs_wake_this_servers_streams_on_that_queue(redis: Redis, key_prefix: str) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    await seed_job(redis, store, JobState.SCHEDULED, due_ms=redis_clock.ms)
    maintenance, signals = _loop(store, redis, local)
    woken, idle = signals.watch(["q"]), signals.watch(["elsewhere"])

    await maintenance.sweep_once()

    assert woken.is_set() and not idle.is_set()


async def test_wake_at_brings_the_next_pass_forward_but_never_back(redis: Redis, key_prefix: str) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    maintenance, _ = _loop(store, redis, local)
    await maintenance.sweep_once()  # learns the skew; next pass one interval away

    maintenance.wake_at(redis_clock.ms + 2_000)
    assert maintenance.next_sweep_ms == local.ms + 2_000
    maintenance.wake_at(redis_clock.ms + 9_000)
    assert maintenance.next_sweep_ms == local.ms + 2_000


async def test_a_wake_at_during_a_pass_is_kept_for_the_next(redis: Redis, key_prefix: str) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    maintenance, _ = _loop(store, redis, local)
    await maintenance.sweep_once()

    class AnnouncingStore(Store):
        async def known_queues(self) -> list[str]:
            maintenance.wake_at(redis_clock.ms + 1_000)  # a job scheduled while the pass runs
            return await super().known_queues()

    maintenance._store = AnnouncingStore(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    await maintenance.sweep_once()

    assert maintenance.next_sweep_ms == local.ms + 1_000


async def test_a_pass_that_cannot_reach_redis_is_retried_one_interval_later(key_prefix: str) -> None:
    redis_clock, local = _clocks()
    unreachable = connect_redis("redis://127.0.0.1:1/0", timeout_s=0.2)
    store = Store(unreachable, StoreConfig(key_prefix=key_prefix, command_timeout_ms=200), clock=redis_clock)
    maintenance, _ = _loop(store, unreachable, local)

    await asyncio.wait_for(maintenance.sweep_once(), timeout=5)  # logs, does not raise

    assert maintenance.next_sweep_ms == local.ms + INTERVAL_MS
    await unreachable.aclose()
