"""Seeding and raw-Redis reading for the store tests (seed -> call -> assert raw keys)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from jobqueue_server.clock import ManualClock
from jobqueue_server.store import FailOutcome, JobState, LeasedJob, NewJob, Priority, Settle, Store
from jobqueue_server.store.cluster import is_cluster, pubsub_of
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.layout import RECORD_FIELDS
from jobqueue_server.store.shard_subscriptions import ShardSubscriptions

Snapshot = dict[bytes, object]


def ulid_of(job_id: str) -> str:
    return job_id.rpartition(":")[2]


async def enqueue(store: Store, *jobs: NewJob) -> list[str]:
    """Enqueues `jobs` in one call and returns their ids in order."""
    return [outcome.job_id for outcome in (await store.enqueue(list(jobs))).outcomes]


async def enqueue_one(store: Store, queue: str = "q", **fields: Any) -> str:
    (job_id,) = await enqueue(store, NewJob(queue=queue, **fields))
    return job_id


async def lease_one(store: Store, queue: str = "q", lease_ms: int = 0, worker: str = "w") -> LeasedJob:
    (leased,) = (await store.lease(queue, 1, lease_ms, worker)).jobs
    return leased


async def leased_job(store: Store, queue: str = "q", **fields: Any) -> LeasedJob:
    """Enqueues one job on an empty queue and leases it."""
    job_id = await enqueue_one(store, queue, **fields)
    leased = await lease_one(store, queue)
    assert leased.job_id == job_id
    return leased


async def fail_leased(store: Store, leased: LeasedJob, error: str = "boom", **fields: Any) -> FailOutcome:
    """Fails a lease whose token is current; the outcome says where the job went."""
    (outcome,) = await store.fail([Settle(leased.job_id, leased.token, error=error, **fields)])
    assert isinstance(outcome, FailOutcome), outcome
    return outcome


async def job_in_state(store: Store, clock: ManualClock, state: JobState, queue: str = "q") -> str:
    """A job of `queue` brought to `state` through the store's own transitions."""
    if state is JobState.SCHEDULED:
        return await enqueue_one(store, queue, delay_ms=60_000)
    if state is JobState.QUEUED:
        return await enqueue_one(store, queue)
    if state is JobState.CANCELLED:
        job_id = await enqueue_one(store, queue)
        await store.cancel(job_id)
        return job_id
    leased = await leased_job(store, queue, max_attempts=1)
    if state is JobState.COMPLETED:
        assert await store.ack([Settle(leased.job_id, leased.token)]) == [None]
    elif state is JobState.DEAD:
        await fail_leased(store, leased)
    clock.advance(1)
    return leased.job_id


def ready_key(store: Store, queue: str, priority: Priority = Priority.NORMAL) -> str:
    keys = store.keys(queue)
    return {Priority.HIGH: keys.ready_high, Priority.NORMAL: keys.ready_normal, Priority.LOW: keys.ready_low}[
        priority
    ]


async def lease_order(redis: Redis, key: str) -> list[str]:
    """A ready list's ulids, the next to be leased (the tail: lease pops from the right) first."""
    members = await cast(Awaitable[list[bytes]], redis.lrange(key, 0, -1))
    return [m.decode() for m in reversed(members)]


async def ready_ulids(
    redis: Redis, store: Store, queue: str = "q", priority: Priority = Priority.NORMAL
) -> list[str]:
    return await lease_order(redis, ready_key(store, queue, priority))


async def zset(redis: Redis, key: str) -> dict[str, float]:
    """A sorted set as {member: score}."""
    pairs = cast(list[tuple[bytes, float]], await redis.zrange(key, 0, -1, withscores=True))
    return {member.decode(): score for member, score in pairs}


def text_fields(raw: object) -> dict[str, str]:
    """An HGETALL reply as text."""
    return {k.decode(): v.decode() for k, v in cast(dict[bytes, bytes], raw).items()}


async def raw_jobs(redis: Redis, keys: QueueKeys, ulids: list[str]) -> dict[str, dict[str, str]]:
    """The stored entries of the jobs among `ulids` that have a record, read raw from the queue's
    hashes, as text: the record's non-empty fields by name, then `wire`, and `errors` (the JSON
    history), `last_error` and `result` when the job has them."""
    if not ulids:
        return {}
    async with redis.pipeline(transaction=True) as pipe:
        for key in keys.hashes:
            pipe.hmget(key, ulids)
        records, wires, errors, results = await pipe.execute()
    found = {}
    for ulid, record, wire, error, result in zip(ulids, records, wires, errors, results, strict=True):
        if record is None:
            continue
        values = record.decode().split("|", len(RECORD_FIELDS) - 1)
        fields = {name: value for name, value in zip(RECORD_FIELDS, values, strict=True) if value}
        fields["wire"] = wire.decode()
        if error is not None:
            fields["errors"], _, fields["last_error"] = error.decode().partition("\n")
        if result is not None:
            fields["result"] = result.decode()
        found[ulid] = fields
    return found


async def job_fields(redis: Redis, store: Store, job_id: str) -> dict[str, str]:
    """One job's stored entries as text (see raw_jobs); empty when it has none."""
    queue, _, ulid = job_id.rpartition(":")
    return (await raw_jobs(redis, store.keys(queue), [ulid])).get(ulid, {})


async def count_keys(redis: Redis, pattern: str) -> int:
    return len([key async for key in redis.scan_iter(match=pattern, count=1000)])


async def job_count(redis: Redis, store: Store, queue: str = "q") -> int:
    """How many jobs `queue` stores (records in its `jobs` hash)."""
    return int(await cast(Awaitable[int], redis.hlen(store.keys(queue).jobs)))


async def snapshot(redis: Redis, store: Store) -> Snapshot:
    """Every key of the store's prefix with its full contents, to show a call changed nothing."""
    contents: Snapshot = {}
    async for key in redis.scan_iter(match=f"{store.config.key_prefix}:*", count=1000):
        kind = cast(bytes, await redis.type(key)).decode()
        if kind == "hash":
            contents[key] = await cast(Awaitable[object], redis.hgetall(key))
        elif kind == "list":
            contents[key] = await cast(Awaitable[object], redis.lrange(key, 0, -1))
        elif kind == "zset":
            contents[key] = await cast(Awaitable[object], redis.zrange(key, 0, -1, withscores=True))
        elif kind == "set":
            contents[key] = sorted(await cast(Awaitable[set[bytes]], redis.smembers(key)))
        else:
            contents[key] = await cast(Awaitable[object], redis.get(key))
    return contents


class Signals:
    """The wake-up signals published on one queue's channel."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    async def next(self, timeout_s: float = 2.0) -> bytes | None:
        """The next signal's data, or None when none came within the timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.received.get()
        except TimeoutError:
            return None


@asynccontextmanager
async def plain_pubsub(redis: Redis) -> AsyncIterator[PubSub]:
    """A pub/sub connection to the test Redis, or to one node of the test cluster."""
    pubsub, close = await pubsub_of(redis)
    try:
        yield pubsub
    finally:
        await close()


@asynccontextmanager
async def listening(redis: Redis, store: Store, queue: str = "q") -> AsyncIterator[Signals]:
    """Subscribes to the queue's wake-up channel for the duration of the block, as the servers
    do: plainly, or on a cluster to the channel's shard."""
    signals, channel = Signals(), store.keys(queue).signal
    if is_cluster(redis):
        cluster = cast(RedisCluster, redis)
        await cluster.initialize()
        shards = ShardSubscriptions(cluster, lambda _, data: signals.received.put_nowait(data), lambda: None)
        try:
            await shards.subscribe(channel)
            async with asyncio.timeout(2.0):
                while channel.encode() not in shards.confirmed:
                    await asyncio.sleep(0.005)
            yield signals
        finally:
            await shards.aclose()
        return
    pubsub, close = await pubsub_of(redis)
    try:
        await pubsub.subscribe(channel)
        confirmation = await pubsub.get_message(timeout=2.0)
        assert confirmation is not None and confirmation["type"] == "subscribe"
        reader = asyncio.create_task(_relay(pubsub, signals))
        try:
            yield signals
        finally:
            reader.cancel()
    finally:
        await close()


async def _relay(pubsub: PubSub, signals: Signals) -> None:
    while True:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is not None:
            signals.received.put_nowait(bytes(message["data"]))
