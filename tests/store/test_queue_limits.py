"""Queue limits in the lease script: max_active caps the jobs active at once, a rate's token
bucket caps how many are leased and when; a lease held back by a limit says when to lease
again; an ack frees room and signals the queue."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import NewJob, QueueLimits, Settle, Store
from tests.store.helpers import enqueue, listening


async def test_max_active_caps_the_active_jobs_and_an_ack_frees_room_with_a_signal(
    store: Store, redis: Redis
) -> None:
    await enqueue(store, *[NewJob("q") for _ in range(5)])
    await store.set_limits("q", QueueLimits(max_active=2))

    first = await store.lease("q", 10, 0, "w")
    assert len(first.jobs) == 2 and first.retry_ms == 0  # held back until a slot frees
    assert (await store.lease("q", 10, 0, "w")).jobs == []

    async with listening(redis, store, "q") as signals:
        await store.ack([Settle(first.jobs[0].job_id, first.jobs[0].token)])
        signal = await signals.next(timeout_s=5.0)
    assert signal is not None
    assert len((await store.lease("q", 10, 0, "w")).jobs) == 1


async def test_a_rate_leases_a_burst_then_one_job_per_token(store: Store, clock: ManualClock) -> None:
    await enqueue(store, *[NewJob("q") for _ in range(20)])
    await store.set_limits("q", QueueLimits(rate_per_second=10, burst=3))

    burst = await store.lease("q", 10, 0, "w")
    assert len(burst.jobs) == 3 and burst.retry_ms == clock.now_ms() + 100

    clock.advance(50)
    early = await store.lease("q", 10, 0, "w")
    assert early.jobs == [] and early.retry_ms == clock.now_ms() + 50
    clock.advance(50)
    assert len((await store.lease("q", 10, 0, "w")).jobs) == 1
    clock.advance(10_000)  # a long pause refills only up to the burst
    assert len((await store.lease("q", 10, 0, "w")).jobs) == 3


async def test_a_limit_with_no_ready_job_held_back_asks_for_no_retry(store: Store) -> None:
    await enqueue(store, NewJob("q"))
    await store.set_limits("q", QueueLimits(rate_per_second=5, max_active=4))

    lease = await store.lease("q", 10, 0, "w")

    assert len(lease.jobs) == 1 and lease.retry_ms == -1


async def test_limits_show_in_stats_and_all_zero_removes_them(store: Store) -> None:
    await store.set_limits("q", QueueLimits(rate_per_second=2.5, burst=4, max_active=7))
    (counts,) = await store.stats(["q"])
    assert counts.limits == QueueLimits(2.5, 4, 7)

    await store.set_limits("q", QueueLimits())
    (counts,) = await store.stats(["q"])
    assert counts.limits is None
