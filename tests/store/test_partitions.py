"""The partition counts: grown by one script, never lowered, and written back by a server that
knew them when the store lost them; the shares of a partitioned queue's limits."""

from __future__ import annotations

from redis.asyncio import Redis

from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import store_config
from jobqueue_server.store import QueueLimits, Store
from jobqueue_server.store.partitions import partitions_key, split_limits


async def test_counts_grow_and_never_shrink(store: Store) -> None:
    assert await store.partitions.grow("q", 3) == (1, 3)
    assert await store.partitions.grow("q", 2) == (3, 3)
    assert await store.partitions.grow("q", 3) == (3, 3)
    assert store.partitions.names("q") == ["q", "q~1", "q~2"]
    assert store.partitions.names("other") == ["other"]


async def test_a_count_the_store_lost_is_written_back_by_a_server_that_knew_it(
    store: Store, redis: Redis, settings: ServerSettings
) -> None:
    await store.create_queue("q", 4)
    await redis.delete(partitions_key(settings.key_prefix))  # a restart without persistence
    assert await store.partitions.refresh() == []  # this server keeps 4: nothing changed for it
    fresh = Store(redis, store_config(settings))  # a server starting now reads it back
    await fresh.load_scripts()
    assert await fresh.partitions.refresh() == ["q"]
    assert fresh.partitions.count("q") == 4


async def test_another_servers_growth_is_seen_on_refresh(
    store: Store, redis: Redis, settings: ServerSettings
) -> None:
    other = Store(redis, store_config(settings))
    await other.load_scripts()
    await other.create_queue("q", 2)
    version = store.partitions.version
    assert store.partitions.count("q") == 1
    assert await store.partitions.refresh() == ["q"]
    assert store.partitions.count("q") == 2 and store.partitions.version > version


def test_limit_shares_add_up_to_the_queues_limits() -> None:
    shares = split_limits(QueueLimits(rate_per_second=10, burst=7, max_active=5, group_max_active=1), 3)
    assert [s.max_active for s in shares] == [2, 2, 1]
    assert [s.burst for s in shares] == [3, 2, 2]
    assert sum(s.rate_per_second for s in shares) == 10
    assert {s.group_max_active for s in shares} == {1}  # a group's jobs are in one partition
    assert split_limits(QueueLimits(max_active=4), 1) == [QueueLimits(max_active=4)]
