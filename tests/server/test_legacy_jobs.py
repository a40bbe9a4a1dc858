"""Jobs stored before a job's wire bytes were (the hash held payload, payload_bytes, metadata...
instead) are read and delivered as they were enqueued, so an upgrade keeps queued jobs whole."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from google.protobuf import struct_pb2
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.config import ServerSettings
from jobqueue_server.ids import make_job_id, new_ulid
from jobqueue_server.store import Backoff
from jobqueue_server.store.keys import QueueKeys
from tests.server.streams import LeaseStream

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

CREATED_MS = 1_700_000_000_000


async def _legacy_job(redis: Redis, prefix: str, queue: str = "q") -> tuple[str, struct_pb2.Struct]:
    """A queued job written as the previous version of the enqueue script wrote it."""
    payload = struct_pb2.Struct()
    payload.update({"to": "ada@example.com", "n": 3})
    ulid = new_ulid(CREATED_MS)
    keys = QueueKeys.of(prefix, queue)
    await redis.hset(
        keys.job(ulid),
        mapping={
            "state": "queued", "priority": 3, "create_ms": CREATED_MS, "due_ms": CREATED_MS,
            "ready_ms": CREATED_MS, "payload": payload.SerializeToString(), "payload_bytes": b"\x00raw",
            "attempts": 0, "max_attempts": 5, "backoff": Backoff(250, 9_000, 3.0, 0.0).encode(),
            "lease_ms": 45_000, "metadata": json.dumps({"tenant": "t-1"}), "idem_key": "order-9",
        },
    )  # fmt: skip
    await redis.lpush(keys.ready_high, ulid)
    await redis.sadd(f"{prefix}:queues", queue)
    return make_job_id(queue, ulid), payload


def _assert_as_enqueued(job: job_pb2.Job, job_id: str, payload: struct_pb2.Struct) -> None:
    assert (job.id, job.queue, job.payload, job.payload_bytes) == (job_id, "q", payload, b"\x00raw")
    assert (job.priority, job.max_attempts, dict(job.metadata)) == (
        job_pb2.PRIORITY_HIGH,
        5,
        {"tenant": "t-1"},
    )
    assert (job.idempotency_key, job.lease_duration.seconds, job.backoff.initial_delay.ToMilliseconds()) == (
        "order-9",
        45,
        250,
    )
    assert job.create_time.ToMilliseconds() == CREATED_MS


async def test_a_legacy_job_is_read_whole(stub: Stub, redis: Redis, settings: ServerSettings) -> None:
    job_id, payload = await _legacy_job(redis, settings.key_prefix)

    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job

    _assert_as_enqueued(job, job_id, payload)
    assert (job.state, job.attempts) == (job_pb2.JOB_STATE_QUEUED, 0)


async def test_a_legacy_job_is_leased_whole_and_completes(
    stub: Stub, redis: Redis, settings: ServerSettings
) -> None:
    job_id, payload = await _legacy_job(redis, settings.key_prefix)
    stream = await LeaseStream(stub).subscribe("q")

    (leased,) = await stream.wait_jobs(1)

    _assert_as_enqueued(leased.job, job_id, payload)
    assert (leased.job.state, leased.job.attempts, leased.job.worker_id) == (
        job_pb2.JOB_STATE_ACTIVE,
        1,
        "test-worker",
    )
    await stream.ack(leased, result={"ok": True})
    (confirmation,) = await stream.wait_confirmations(1)
    assert confirmation.status.code == 0
    await stream.close()
    done = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert (done.state, done.result["ok"]) == (job_pb2.JOB_STATE_COMPLETED, True)
