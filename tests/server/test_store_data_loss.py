"""Redis lost its data (a restart without persistence, a failover to an empty replica) while a
server kept running: the queues it had registered are registered again by the next maintenance
pass, so a job scheduled on one is still promoted (issue 12: it stayed SCHEDULED for ever)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf import duration_pb2
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.server.streams import wait_for_state

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def test_a_job_scheduled_after_redis_lost_its_data_is_still_promoted(
    stub: Stub, redis: Redis, key_prefix: str
) -> None:
    await stub.Enqueue(svc.EnqueueRequest(queue="reports"))  # the server now knows the queue
    lost = [key async for key in redis.scan_iter(match=f"{key_prefix}:*")]
    await redis.delete(*lost)  # every key of this server's store: the registry with them

    delayed = svc.EnqueueRequest(queue="reports", delay=duration_pb2.Duration(nanos=200_000_000))
    job_id = (await stub.Enqueue(delayed)).job_id

    promoted = await wait_for_state(stub, job_id, job_pb2.JOB_STATE_QUEUED)
    assert promoted.job.id == job_id
    stats = await stub.Stats(svc.StatsRequest())
    assert [q.queue for q in stats.queues] == ["reports"]
