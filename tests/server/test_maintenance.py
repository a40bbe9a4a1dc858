"""The maintenance loop's planning: when the next pass runs, from what each pass reports.

Driven by ManualClocks, one for the scripts (Redis's time) and one for the server's own
clock, with passes run directly: no sleeping, no waiting for timers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.maintenance import FULL_LOOK_EVERY, Maintenance
from jobqueue_server.runtime.app import connect_redis
from jobqueue_server.store import JobState, NewJob, Store, StoreConfig
from jobqueue_server.store.due import Due
from jobqueue_server.store.keys import queues_set
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
        async def due(self, queues: Sequence[str], now_ms: int, *, sizes: bool = False) -> dict[str, Due]:
            maintenance.wake_at(redis_clock.ms + 1_000, "q")  # a job scheduled while the pass runs
            return await super().due(queues, now_ms, sizes=sizes)

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


class RecordingStore(Store):
    """The real store, noting which queues each pass reads the due times of."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.looked_at: list[list[str]] = []

    async def due(self, queues: Sequence[str], now_ms: int, *, sizes: bool = False) -> dict[str, Due]:
        self.looked_at.append(sorted(queues))
        return await super().due(queues, now_ms, sizes=sizes)


async def test_a_pass_reads_only_the_queues_with_work_due_and_all_of_them_every_tenth(
    redis: Redis, key_prefix: str
) -> None:
    redis_clock, local = _clocks()
    store = RecordingStore(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    for n in range(50):  # idle queues: jobs waiting, nothing due
        await store.enqueue([NewJob(queue=f"idle-{n}")])
    maintenance, _ = _loop(store, redis, local)

    await maintenance.sweep_once()  # the first pass reads every queue
    await maintenance.sweep_once()
    maintenance.wake_at(redis_clock.ms + 1_000, "idle-7")  # a delayed job, as the servicer says
    redis_clock.advance(1_000)
    await maintenance.sweep_once()
    for _ in range(FULL_LOOK_EVERY - 3):
        await maintenance.sweep_once()

    assert len(store.looked_at[0]) == 50
    assert store.looked_at[1:3] == [[], ["idle-7"]]
    assert store.looked_at[3:FULL_LOOK_EVERY] == [[]] * (FULL_LOOK_EVERY - 3)
    await maintenance.sweep_once()  # the tenth: every queue again
    assert len(store.looked_at[FULL_LOOK_EVERY]) == 50


async def test_work_another_server_left_is_found_by_the_next_full_look(redis: Redis, key_prefix: str) -> None:
    redis_clock, local = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    await store.enqueue([NewJob(queue="shared")])
    maintenance, _ = _loop(store, redis, local)
    await maintenance.sweep_once()
    # Another server scheduled a job here and died before it was due; nobody announced it.
    job_id = await seed_job(redis, store, JobState.SCHEDULED, queue="shared", due_ms=redis_clock.ms - 1)

    for _ in range(FULL_LOOK_EVERY - 1):
        await maintenance.sweep_once()
    assert (await store.get(job_id)).state == JobState.SCHEDULED
    await maintenance.sweep_once()  # a full look
    assert (await store.get(job_id)).state == JobState.QUEUED


async def _registered(redis: Redis, prefix: str) -> set[str]:
    return {m.decode() for m in await redis.smembers(queues_set(prefix))}


async def test_a_queue_empty_for_the_idle_time_is_dropped_and_comes_back_when_used(
    redis: Redis, key_prefix: str
) -> None:
    redis_clock, local = _clocks()
    config = StoreConfig(key_prefix=key_prefix, retention_ms=0, registration_ttl_ms=60_000)
    store, other = Store(redis, config, clock=redis_clock), Store(redis, config, clock=redis_clock)
    await store.enqueue([NewJob(queue="busy")])
    for server in (store, other):  # both servers used "brief"; its jobs were cancelled
        (outcome,) = (await server.enqueue([NewJob(queue="brief")])).outcomes
        await server.cancel(outcome.job_id)
    signals = QueueSignals(redis, key_prefix)
    maintenance = Maintenance(store, signals, INTERVAL_MS / 1000, clock=local, queue_idle_s=120)

    await maintenance.sweep_once()  # trims the cancelled jobs (retention 0)
    for _ in range(3 * FULL_LOOK_EVERY):  # full looks find it empty for more than 120 s
        redis_clock.advance(6_000)
        await maintenance.sweep_once()
    assert await _registered(redis, key_prefix) == {"busy"}
    assert "brief" not in await other.known_queues()  # its registration is stale: not put back

    await other.enqueue([NewJob(queue="brief")])  # used again: registered again
    assert await _registered(redis, key_prefix) == {"busy", "brief"}


async def test_a_queue_dropped_while_a_server_enqueued_to_it_is_registered_again(
    redis: Redis, key_prefix: str
) -> None:
    redis_clock, _ = _clocks()
    store = Store(redis, StoreConfig(key_prefix=key_prefix), clock=redis_clock)
    await store.enqueue([NewJob(queue="racy", due_ms=redis_clock.ms + 60_000)])
    await redis.srem(queues_set(key_prefix), "racy")  # dropped as this server's job went in

    assert "racy" in await store.known_queues()  # its registration is fresh: put back
    assert "racy" in await _registered(redis, key_prefix)
