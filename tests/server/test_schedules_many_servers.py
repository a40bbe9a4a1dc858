"""Exactly one job per tick across servers: three servers whose clocks disagree by up to 40 s
run one every-second schedule while they are stopped and started again (once all at the same
time); every tick from the schedule's creation to its last run has exactly one job."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.clock import Clock
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests.server.test_schedules import id_time_ms

QUEUE = "heartbeats"
SKEWS_MS = (-40_000, 0, 25_000)


class SkewedClock(Clock):
    """The OS clock, `offset_ms` off (the scripts still read Redis's TIME)."""

    def __init__(self, offset_ms: int) -> None:
        super().__init__()
        self.offset_ms = offset_ms

    def now_ms(self) -> int:
        return super().now_ms() + self.offset_ms


async def _start(redis: Redis, settings: ServerSettings, skew_ms: int) -> App:
    return await start_app(settings, Store(redis, store_config(settings), clock=SkewedClock(skew_ms)))


async def _stop(app: App) -> None:
    await app.stop(
        grace_s=0
    )  # the scheduler is cancelled wherever it is: between a tick's job and its cursor too


@pytest.mark.timeout(120)
async def test_three_skewed_servers_through_restarts_make_one_job_per_tick(
    redis: Redis, settings: ServerSettings
) -> None:
    fast = settings.model_copy(update={"sweep_interval_seconds": 0.2})
    servers = [await _start(redis, fast, skew) for skew in SKEWS_MS]
    chosen = random.Random(7)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{servers[0].port}") as channel:
            stub = svc_grpc.JobQueueServiceStub(channel)
            every_second = svc.Schedule(
                name="heartbeat", cron="* * * * * *", template=svc.JobTemplate(queue=QUEUE)
            )
            created = (await stub.CreateSchedule(svc.CreateScheduleRequest(schedule=every_second))).schedule
            for round_ in range(8):
                await asyncio.sleep(1.0)
                index = chosen.randrange(len(servers))
                await _stop(servers[index])
                servers[index] = await _start(redis, fast, SKEWS_MS[index])
                if round_ == 4:  # every server down at once for two ticks
                    for index in range(len(servers)):
                        await _stop(servers[index])
                    await asyncio.sleep(2.0)
                    for index in range(len(servers)):
                        servers[index] = await _start(redis, fast, SKEWS_MS[index])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{servers[1].port}") as channel:
            stub = svc_grpc.JobQueueServiceStub(channel)
            await stub.PauseSchedule(svc.PauseScheduleRequest(name="heartbeat"))
            last = (await stub.GetSchedule(svc.GetScheduleRequest(name="heartbeat"))).schedule
            listed = await stub.ListJobs(
                svc.ListJobsRequest(queue=QUEUE, state=job_pb2.JOB_STATE_QUEUED, page_size=1000)
            )
    finally:
        for server in servers:
            await _stop(server)

    ticks = Counter(id_time_ms(job.id) for job in listed.jobs)
    first_s = created.create_time.seconds + 1
    last_s = last.last_run_time.seconds
    assert last_s - first_s >= 8  # the schedule ran through the restarts
    assert sorted(ticks) == [second * 1000 for second in range(first_s, last_s + 1)]  # none missed
    assert set(ticks.values()) == {1}  # none doubled
