"""Redis Cluster mode on a real local Valkey Cluster (3 primaries, a replica each), in every run
of the suite: a queue's keys live in its slot on one node, the store's scripts reach the node
of each queue, wake-ups cross nodes, and the cluster URL is read strictly. (JOBQ_TEST_REDIS_CLUSTER=1
runs the whole store and service suites on such a cluster too.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from jobqueue_server.clock import ManualClock
from jobqueue_server.config import ServerSettings
from jobqueue_server.errors import DurabilityUnavailable
from jobqueue_server.runtime.app import connect_redis, store_config
from jobqueue_server.runtime.valkey import EmbeddedValkey
from jobqueue_server.store import Durability, NewJob, Settle, Store
from jobqueue_server.store.cluster import startup_nodes
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.signals import QueueSignals
from tests.cluster import LocalCluster
from tests.store.helpers import listening

QUEUES = [f"queue-{n}" for n in range(12)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    yield started
    started.stop()


@pytest.fixture
async def cluster_redis(cluster: LocalCluster) -> AsyncIterator[Redis]:
    client = connect_redis(cluster.url, timeout_s=2.0)
    yield client
    await client.aclose()


@pytest.fixture
def cluster_store(cluster_redis: Redis, settings: ServerSettings, tmp_path: Path) -> Store:
    return Store(cluster_redis, store_config(settings), clock=ManualClock())


def test_every_key_of_a_queue_is_in_the_queues_slot() -> None:
    for queue in QUEUES:
        keys = QueueKeys.of("jq", queue)
        names = [getattr(keys, name) for name in keys.__slots__]
        slots = {key_slot(name.encode()) for name in names if isinstance(name, str)}
        assert slots == {key_slot(f"{{{queue}}}".encode())}


async def test_jobs_of_queues_on_every_node_go_through_their_lifecycle(
    cluster: LocalCluster, cluster_store: Store
) -> None:
    nodes = {cluster.primary_for(f"{{{queue}}}").port for queue in QUEUES}
    assert len(nodes) == 3, "the queues spread over the three primaries"

    result = await cluster_store.enqueue([NewJob(queue=queue) for queue in QUEUES for _ in range(2)])
    assert all(outcome.job_id for outcome in result.outcomes)
    for queue in QUEUES:
        lease = await cluster_store.lease(queue, 5, 0, "w")
        assert len(lease.jobs) == 2
        first, second = lease.jobs
        assert await cluster_store.ack([Settle(first.job_id, first.token)]) == [None]
        failed = await cluster_store.fail(
            [Settle(second.job_id, second.token, error="boom", non_retryable=True)]
        )
        assert not isinstance(failed[0], Exception)
    stats = {s.queue: s for s in await cluster_store.stats(QUEUES)}
    assert all((stats[q].completed, stats[q].dead) == (1, 1) for q in QUEUES)


async def test_an_enqueue_on_one_node_wakes_a_listener_on_any_node(
    cluster_redis: Redis, cluster_store: Store
) -> None:
    for queue in QUEUES[:4]:
        async with listening(cluster_redis, cluster_store, queue) as signals:
            await cluster_store.enqueue([NewJob(queue=queue)])
            message = await signals.next()
            assert message is not None and message.startswith(b"ready")


async def _until_subscribed(node: EmbeddedValkey, channel: str) -> None:
    """Until a server holds a sharded subscription to `channel` on `node`."""
    async with Redis(port=node.port) as client, asyncio.timeout(10):
        while True:
            _, count = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)  # type: ignore[no-untyped-call]
            if int(count):
                return
            await asyncio.sleep(0.02)


async def test_a_servers_wake_ups_follow_its_queue_to_another_node(
    cluster: LocalCluster, cluster_redis: Redis, cluster_store: Store
) -> None:
    queue = "follows-its-slot"
    channel = cluster_store.keys(queue).signal
    signals = QueueSignals(cluster_redis, cluster_store.config.key_prefix)
    listening = asyncio.create_task(signals.run())
    event = signals.watch([queue])
    try:
        source = cluster.primary_for(f"{{{queue}}}")
        await _until_subscribed(source, channel)  # sharded: on the queue's own node
        target = next(node for node in cluster.nodes[: cluster.primaries] if node.port != source.port)
        await asyncio.to_thread(cluster.move_slot, f"{{{queue}}}", target)
        await _until_subscribed(target, channel)  # the node dropped it; the server followed
        event.clear()
        await cluster_store.enqueue([NewJob(queue=queue)])  # MOVED, then sent to the new node
        async with asyncio.timeout(5):
            await event.wait()
    finally:
        signals.unwatch(event, [queue])
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening


async def test_fsynced_writes_are_refused_on_a_cluster_and_change_nothing(cluster_store: Store) -> None:
    with pytest.raises(DurabilityUnavailable, match="Cluster"):
        await cluster_store.enqueue([NewJob(queue="fsynced")], Durability.FSYNCED)
    assert (await cluster_store.stats(["fsynced"]))[0].queued == 0


async def test_a_replicated_write_waits_for_the_replicas_of_every_primary_it_wrote_to(
    cluster: LocalCluster, cluster_store: Store
) -> None:
    result = await cluster_store.enqueue([NewJob(queue=queue) for queue in QUEUES], Durability.REPLICATED)

    for queue, outcome in zip(QUEUES, result.outcomes, strict=True):
        replica = cluster.replica_of(cluster.primary_for(f"{{{queue}}}"))
        async with Redis(port=replica.port) as client:
            await client.execute_command("READONLY")  # type: ignore[no-untyped-call]
            ulid = outcome.job_id.rpartition(":")[2]
            assert await client.hexists(cluster_store.keys(queue).jobs, ulid)


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host-without-port",
        "redis+cluster://host:99999",
        "redis+cluster://" + ",".join(f"h{n}:1" for n in range(65)),
    ],
)
def test_a_malformed_cluster_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="redis\\+cluster"):
        startup_nodes(url)


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    nodes, username, password = startup_nodes("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001")
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert (username, password) == ("app", "s@cret")
