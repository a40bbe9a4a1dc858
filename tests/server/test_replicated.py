"""DURABILITY_REPLICATED on a real primary with a real replica: an acknowledged write is on the
replica when the call returns; without a replica the request is refused and writes nothing; a
replica that does not answer makes the write REPLICATION_NOT_CONFIRMED, and it stands."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
import redis as sync_redis
from redis.asyncio import Redis

from jobqueue import AsyncClient, DurabilityUnavailable, ReplicationNotConfirmed
from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, connect_redis, start_app, store_config
from jobqueue_server.runtime.valkey import EmbeddedValkey
from jobqueue_server.store import Store
from jobqueue_server.store.keys import QueueKeys
from tests.server.streams import LeaseStream
from tests.support import REDIS_BINARY_ENV, without_replicas

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

REPLICATED = job_pb2.DURABILITY_REPLICATED
LINK_TIMEOUT_S = 15.0


def _binary() -> Path | None:
    binary = os.environ.get(REDIS_BINARY_ENV)
    return Path(binary) if binary else None


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[EmbeddedValkey, EmbeddedValkey]]:
    """A primary and its replica, the link up."""
    # No wait for more replicas before the first full sync: this one is all there will be.
    primary = EmbeddedValkey(
        tmp_path / "primary", binary=_binary(), extra_config={"repl-diskless-sync-delay": "0"}
    )
    primary.start()
    replica = EmbeddedValkey(
        tmp_path / "replica", binary=_binary(), extra_config={"replicaof": f"127.0.0.1 {primary.port}"}
    )
    replica.start()
    try:
        # Up means writes reach the replica. Neither end's status says that alone: after a full
        # sync Redis 7.0 counts the replica online but streams to it only after the replica's
        # first ACK (up to a second later), and the replica calls its link up before that.
        with sync_redis.Redis(port=primary.port) as client:
            deadline = time.monotonic() + LINK_TIMEOUT_S
            while True:
                client.set("link-probe", 1)
                if client.execute_command("WAIT", 1, 100) >= 1:
                    break
                assert time.monotonic() < deadline, "the replica did not connect"
            client.delete("link-probe")
        yield primary, replica
    finally:
        if replica.pid is not None:
            os.kill(replica.pid, signal.SIGCONT)  # a test may have stopped it
        replica.stop()
        primary.stop()


@pytest.fixture
async def replicated_app(
    pair: tuple[EmbeddedValkey, EmbeddedValkey], settings: ServerSettings
) -> AsyncIterator[App]:
    primary, _ = pair
    chosen = settings.model_copy(update={"redis_url": primary.url, "replication_timeout_seconds": 0.5})
    redis = connect_redis(primary.url, 2.0)
    running = await start_app(chosen, Store(redis, store_config(chosen)))
    yield running
    await running.stop(grace_s=0)
    await redis.aclose()


@pytest.fixture
async def replicated_stub(replicated_app: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{replicated_app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


async def _on_replica(replica: EmbeddedValkey, settings: ServerSettings, job_id: str) -> bytes | None:
    queue, _, ulid = job_id.rpartition(":")
    async with Redis(port=replica.port) as client:
        found: bytes | None = await client.hget(QueueKeys.of(settings.key_prefix, queue).jobs, ulid)
        return found


async def test_a_replicated_enqueue_is_on_the_replica_when_it_returns(
    replicated_stub: Stub, pair: tuple[EmbeddedValkey, EmbeddedValkey], settings: ServerSettings
) -> None:
    _, replica = pair
    for _ in range(20):
        reply = await replicated_stub.Enqueue(svc.EnqueueRequest(queue="q", durability=REPLICATED))
        assert await _on_replica(replica, settings, reply.job_id) is not None


async def test_a_replicated_ack_is_on_the_replica_when_it_is_confirmed(
    replicated_stub: Stub, pair: tuple[EmbeddedValkey, EmbeddedValkey], settings: ServerSettings
) -> None:
    _, replica = pair
    await replicated_stub.Enqueue(svc.EnqueueRequest(queue="q"))
    stream = await LeaseStream(replicated_stub).subscribe("q", max_in_flight=1)
    (job,) = await stream.wait_jobs(1)
    ack = svc.AckRequest(job_id=job.job.id, lease_token=job.lease_token, durability=REPLICATED)
    await stream.call.write(svc.LeaseRequest(acks=[ack]))
    (confirmation,) = await stream.wait_confirmations(1)
    assert confirmation.status.code == 0
    ulid = job.job.id.rpartition(":")[2]
    async with Redis(port=replica.port) as client:
        completed = await client.zscore(QueueKeys.of(settings.key_prefix, "q").completed, ulid)
    assert completed is not None
    await stream.close()


@without_replicas("the suite's Redis has replicas here")
async def test_without_a_replica_a_replicated_write_is_refused_and_writes_nothing(
    app: App, settings: ServerSettings
) -> None:
    async with AsyncClient(f"127.0.0.1:{app.port}", batching=None) as client:
        with pytest.raises(DurabilityUnavailable, match="0 connected replicas"):
            await client.enqueue("q", {}, durability="replicated")
        assert await client.stats() == []  # not even the queue was registered


async def test_a_replica_that_does_not_confirm_makes_the_write_unconfirmed_and_it_stands(
    replicated_app: App, pair: tuple[EmbeddedValkey, EmbeddedValkey]
) -> None:
    _, replica = pair
    assert replica.pid is not None
    os.kill(replica.pid, signal.SIGSTOP)  # alive for the primary's link, but silent
    try:
        async with AsyncClient(f"127.0.0.1:{replicated_app.port}", batching=None) as client:
            with pytest.raises(ReplicationNotConfirmed):
                await client.enqueue("q", {"n": 1}, durability="replicated", idempotency_key="k1")
            assert (await client.stats("q"))[0].queued == 1  # applied on the primary
            again = await client.enqueue("q", {"n": 1}, idempotency_key="k1")
            assert again.duplicate
    finally:
        os.kill(replica.pid, signal.SIGCONT)
