"""PauseQueue/ResumeQueue in the store: the lease script leases nothing from a paused queue,
enqueues still land, counts say paused, and resuming wakes the queue's streams."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.store import Settle, Store
from jobqueue_server.store.due import with_ready_jobs
from tests.store.helpers import enqueue_one, lease_one, listening


async def test_a_paused_queue_takes_jobs_but_leases_none_until_resumed(store: Store) -> None:
    assert await store.pause("q") is True
    job_id = await enqueue_one(store)

    assert (await store.lease("q", 10, 0, "w")).jobs == []
    (counts,) = await store.stats(["q"])
    assert counts.queued == 1 and counts.paused

    assert await store.resume("q") is True
    assert (await lease_one(store)).job_id == job_id
    (counts,) = await store.stats(["q"])
    assert not counts.paused


async def test_pausing_and_resuming_twice_say_nothing_changed(store: Store) -> None:
    assert await store.pause("q") is True
    assert await store.pause("q") is False
    assert await store.resume("q") is True
    assert await store.resume("q") is False


async def test_a_job_leased_before_the_pause_is_still_acked(store: Store) -> None:
    await enqueue_one(store)
    leased = await lease_one(store)
    await store.pause("q")

    assert await store.ack([Settle(leased.job_id, leased.token)]) == [None]


async def test_a_paused_queue_is_listed_by_stats_before_it_has_a_job(store: Store) -> None:
    await store.pause("later")

    assert "later" in await store.known_queues()


async def test_resuming_wakes_the_streams_of_every_server(store: Store, redis: Redis) -> None:
    await store.pause("q")
    async with listening(redis, store) as signals:
        await store.resume("q")

        assert await signals.next() is not None


async def test_the_maintenance_pass_wakes_no_stream_for_a_paused_queue(store: Store, redis: Redis) -> None:
    await enqueue_one(store, "held")
    await enqueue_one(store, "open")
    await store.pause("held")

    ready = await with_ready_jobs(redis, store.keys, ["held", "open"])

    assert ready == ["open"]
