"""Jobs stored by the previous version (one hash per job, with or without wire bytes) are moved
into their queue's hashes when a server starts, and are then served, leased, listed and reported
as the previous version reported them: an upgrade keeps every job whole."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import struct_pb2
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.api import convert, job_wire
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import start_app, store_config
from jobqueue_server.store import Store
from jobqueue_server.store.decode import legacy_record
from jobqueue_server.store.keys import QueueKeys
from tests.server.streams import LeaseStream
from tests.store.seed import LEGACY_STATES, legacy_payload, seed_legacy_job
from tests.support import not_on_cluster

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

# job id -> the Job the previous version's GetStatus answered for it
Reported = dict[str, job_pb2.Job]

pytestmark = not_on_cluster("no version that stored format 1 could use a cluster")


async def _reported_before(redis: Redis, prefix: str, job_id: str) -> job_pb2.Job:
    """What the previous version sent for a job: the Job built from its hash."""
    queue, _, ulid = job_id.rpartition(":")
    fields = await redis.hgetall(QueueKeys.of(prefix, queue).job(ulid))
    return job_wire.job_message(legacy_record(job_id, queue, fields))


@pytest.fixture
async def old_jobs(redis: Redis, settings: ServerSettings) -> Reported:
    """One job in every state, stored with wire bytes and from before them, on Redis's clock."""
    now = int(time.time() * 1000)
    reported = {}
    for state in LEGACY_STATES:
        for with_wire in (True, False):
            job_id = await seed_legacy_job(redis, settings.key_prefix, state, now, with_wire=with_wire)
            reported[job_id] = await _reported_before(redis, settings.key_prefix, job_id)
    return reported


@pytest.fixture
async def upgraded(old_jobs: Reported, redis: Redis, settings: ServerSettings) -> AsyncIterator[Stub]:
    """A server started after the jobs were stored (the store is upgraded before it serves)."""
    app = await start_app(settings, Store(redis, store_config(settings)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)
    await app.stop(grace_s=0)


async def test_every_old_job_is_reported_as_before(upgraded: Stub, old_jobs: Reported) -> None:
    for job_id, before in old_jobs.items():
        assert (await upgraded.GetStatus(svc.GetStatusRequest(job_id=job_id))).job == before, job_id


async def test_every_old_job_is_listed_as_before(upgraded: Stub, old_jobs: Reported) -> None:
    for state in LEGACY_STATES:
        page = await upgraded.ListJobs(
            svc.ListJobsRequest(queue="q", state=convert.STATE_TO_PROTO[state], page_size=10)
        )
        expected = {i: job for i, job in old_jobs.items() if job.state == convert.STATE_TO_PROTO[state]}
        assert {job.id: job for job in page.jobs} == expected, state
        assert page.total_size == 2


async def test_old_queued_jobs_are_leased_whole_and_complete(upgraded: Stub, old_jobs: Reported) -> None:
    queued = {i for i, job in old_jobs.items() if job.state == job_pb2.JOB_STATE_QUEUED}
    stream = await LeaseStream(upgraded).subscribe("q", max_in_flight=4)

    leased = await stream.wait_jobs(2)

    assert {j.job.id for j in leased} == queued
    for job in leased:
        # As messages: a Struct is a map, serialized in no fixed order.
        payload = struct_pb2.Struct.FromString(legacy_payload())
        assert (job.job.payload, job.job.payload_bytes) == (payload, b"\x00raw")
        assert (job.job.priority, job.job.max_attempts, dict(job.job.metadata)) == (
            job_pb2.PRIORITY_HIGH,
            5,
            {"tenant": "t-1"},
        )
        assert (job.job.idempotency_key, job.job.lease_duration.seconds) == ("order-queued", 45)
        assert (job.job.state, job.job.attempts, job.job.worker_id) == (
            job_pb2.JOB_STATE_ACTIVE,
            1,
            "test-worker",
        )
    await stream.ack(*leased, result={"ok": True})
    assert [c.status.code for c in await stream.wait_confirmations(2)] == [0, 0]
    await stream.close()
    for job_id in queued:
        done = (await upgraded.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
        assert (done.state, done.result["ok"]) == (job_pb2.JOB_STATE_COMPLETED, True)


async def test_an_old_lease_is_settled_with_its_token(upgraded: Stub, old_jobs: Reported) -> None:
    active = [i for i, job in old_jobs.items() if job.state == job_pb2.JOB_STATE_ACTIVE]

    for job_id in active:
        await upgraded.Ack(svc.AckRequest(job_id=job_id, lease_token="legacy-token"))

    for job_id in active:
        job = (await upgraded.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
        assert (job.state, job.worker_id) == (job_pb2.JOB_STATE_COMPLETED, "")


async def test_old_dead_jobs_keep_their_errors_through_a_retry(upgraded: Stub, old_jobs: Reported) -> None:
    dead = [i for i, job in old_jobs.items() if job.state == job_pb2.JOB_STATE_DEAD]

    for job_id in dead:
        await upgraded.Retry(svc.RetryRequest(job_id=job_id))

    for job_id in dead:
        job = (await upgraded.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
        assert (job.state, job.attempts, job.last_error) == (job_pb2.JOB_STATE_QUEUED, 0, "boom")
        assert [(e.attempt, e.message) for e in job.errors] == [(5, "boom")]
