"""Schedules through the service: their life (create, get, list, update, pause, resume, delete),
refusals that name the field and change nothing, and the jobs a server makes at each tick,
after downtime by the catch-up policy (a ManualClock moves time for Redis and the server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import duration_pb2
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.clock import ManualClock
from jobqueue_server.config import ServerSettings
from jobqueue_server.ids import split_job_id
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

MINUTE_MS = 60_000


def yearly(name: str = "new-year", queue: str = "greetings") -> svc.Schedule:
    return svc.Schedule(
        name=name, cron="0 0 1 1 *", template=svc.JobTemplate(queue=queue, metadata={"kind": "card"})
    )


async def refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_a_schedule_lives_through_get_update_pause_resume_and_delete(stub: Stub) -> None:
    created = (await stub.CreateSchedule(svc.CreateScheduleRequest(schedule=yearly()))).schedule
    next_new_year = datetime(datetime.now(UTC).year + 1, 1, 1, tzinfo=UTC)
    assert created.next_run_time.ToDatetime(UTC) == next_new_year
    assert created.template.metadata["kind"] == "card" and not created.paused
    assert (await stub.GetSchedule(svc.GetScheduleRequest(name="new-year"))).schedule == created

    daily = yearly()
    daily.cron = "@daily"
    updated = (await stub.UpdateSchedule(svc.UpdateScheduleRequest(schedule=daily))).schedule
    assert updated.cron == "@daily" and updated.create_time == created.create_time
    assert updated.next_run_time.ToDatetime(UTC) < next_new_year

    assert (await stub.PauseSchedule(svc.PauseScheduleRequest(name="new-year"))).changed
    assert not (await stub.PauseSchedule(svc.PauseScheduleRequest(name="new-year"))).changed
    paused = (await stub.GetSchedule(svc.GetScheduleRequest(name="new-year"))).schedule
    assert paused.paused and not paused.HasField("next_run_time")
    assert (await stub.ResumeSchedule(svc.ResumeScheduleRequest(name="new-year"))).changed
    assert not (await stub.ResumeSchedule(svc.ResumeScheduleRequest(name="new-year"))).changed
    assert (await stub.GetSchedule(svc.GetScheduleRequest(name="new-year"))).schedule.HasField(
        "next_run_time"
    )

    await stub.DeleteSchedule(svc.DeleteScheduleRequest(name="new-year"))
    gone = await refused(stub.GetSchedule(svc.GetScheduleRequest(name="new-year")))
    assert gone.code() is grpc.StatusCode.NOT_FOUND and error_reason(gone) == "SCHEDULE_NOT_FOUND"
    again = await refused(stub.DeleteSchedule(svc.DeleteScheduleRequest(name="new-year")))
    assert error_reason(again) == "SCHEDULE_NOT_FOUND"


async def test_a_taken_name_and_a_bad_definition_are_refused_and_change_nothing(stub: Stub) -> None:
    await stub.CreateSchedule(svc.CreateScheduleRequest(schedule=yearly()))
    other = yearly(queue="elsewhere")
    taken = await refused(stub.CreateSchedule(svc.CreateScheduleRequest(schedule=other)))
    assert taken.code() is grpc.StatusCode.ALREADY_EXISTS and error_reason(taken) == "SCHEDULE_EXISTS"

    bad = yearly()
    bad.template.priority = 99  # type: ignore[assignment]
    invalid = await refused(stub.UpdateSchedule(svc.UpdateScheduleRequest(schedule=bad)))
    assert invalid.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "schedule.template.priority" in (invalid.details() or "")
    bad_cron = yearly(name="other")
    bad_cron.cron = "every day"
    invalid = await refused(stub.CreateSchedule(svc.CreateScheduleRequest(schedule=bad_cron)))
    assert (invalid.details() or "").startswith("schedule.cron:")

    kept = (await stub.GetSchedule(svc.GetScheduleRequest(name="new-year"))).schedule
    assert kept.template.queue == "greetings" and kept.template.priority == job_pb2.PRIORITY_UNSPECIFIED
    listed = await stub.ListSchedules(svc.ListSchedulesRequest())
    assert [s.name for s in listed.schedules] == ["new-year"]


async def test_schedules_are_listed_by_name_a_page_at_a_time(stub: Stub) -> None:
    for name in ("e", "a", "d", "c", "b"):
        await stub.CreateSchedule(svc.CreateScheduleRequest(schedule=yearly(name=name)))
    names, token, pages = [], "", 0
    while True:
        page = await stub.ListSchedules(svc.ListSchedulesRequest(page_size=2, page_token=token))
        names += [s.name for s in page.schedules]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert names == ["a", "b", "c", "d", "e"] and pages == 3

    bad = await refused(stub.ListSchedules(svc.ListSchedulesRequest(page_token="!not-a-token!")))
    assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT and "page_token" in (bad.details() or "")


@pytest.fixture
async def small_stub(redis: Redis, settings: ServerSettings) -> AsyncIterator[Stub]:
    small = settings.model_copy(update={"max_schedules": 2})
    running = await start_app(small, Store(redis, store_config(small)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)
    await running.stop(grace_s=0)


async def test_creating_past_max_schedules_is_refused(small_stub: Stub) -> None:
    for name in ("one", "two"):
        await small_stub.CreateSchedule(svc.CreateScheduleRequest(schedule=yearly(name=name)))
    full = await refused(small_stub.CreateSchedule(svc.CreateScheduleRequest(schedule=yearly(name="three"))))
    assert (
        full.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and error_reason(full) == "SCHEDULE_LIMIT_REACHED"
    )
    listed = await small_stub.ListSchedules(svc.ListSchedulesRequest())
    assert [s.name for s in listed.schedules] == ["one", "two"]


# -- ticks, with time moved by hand --------------------------------------------------------


@pytest.fixture
async def manual_app(redis: Redis, settings: ServerSettings) -> AsyncIterator[tuple[App, ManualClock]]:
    """A server whose clock (and the scripts') moves only when the test says; its scheduler
    plans by that clock, so the test runs passes itself."""
    clock = ManualClock(start_ms=1_800_000_000_000)  # on a whole minute
    running = await start_app(settings, Store(redis, store_config(settings), clock=clock))
    yield running, clock
    await running.stop(grace_s=0)


@pytest.fixture
async def manual_stub(manual_app: tuple[App, ManualClock]) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{manual_app[0].port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


def every_minute(policy: int, limit: int = 0) -> svc.Schedule:
    template = svc.JobTemplate(queue="reports")
    template.payload.update({"kind": "summary"})
    return svc.Schedule(
        name="minutely",
        interval=duration_pb2.Duration(seconds=60),
        template=template,
        catch_up=policy,  # type: ignore[arg-type]
        catch_up_limit=limit,
    )


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def id_time_ms(job_id: str) -> int:
    """The millisecond a job id is dated by: its ULID's first ten characters."""
    value = 0
    for char in job_id.rpartition(":")[2][:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


async def queued_ticks(stub: Stub, queue: str = "reports") -> list[int]:
    """The tick of every queued job of `queue` (a tick's job id is dated by it), oldest first."""
    request = svc.ListJobsRequest(queue=queue, state=job_pb2.JOB_STATE_QUEUED, page_size=1000)
    return sorted(id_time_ms(job.id) for job in (await stub.ListJobs(request)).jobs)


@pytest.mark.parametrize(
    ("policy", "limit", "expected_minutes"),
    [
        (svc.CATCH_UP_POLICY_SKIP, 0, [10]),
        (svc.CATCH_UP_POLICY_ONCE, 0, [9, 10]),
        (svc.CATCH_UP_POLICY_ALL, 0, list(range(1, 11))),
        (svc.CATCH_UP_POLICY_ALL, 4, [7, 8, 9, 10]),
    ],
)
async def test_after_downtime_the_catch_up_policy_says_which_ticks_make_jobs(
    manual_app: tuple[App, ManualClock],
    manual_stub: Stub,
    policy: int,
    limit: int,
    expected_minutes: list[int],
) -> None:
    app, clock = manual_app
    start = clock.ms
    await manual_stub.CreateSchedule(svc.CreateScheduleRequest(schedule=every_minute(policy, limit)))
    clock.advance(10 * MINUTE_MS + 30_000)  # nobody ran for ten ticks

    await app.scheduler.run_once()
    await app.scheduler.run_once()  # a second pass makes nothing more

    assert await queued_ticks(manual_stub) == [start + m * MINUTE_MS for m in expected_minutes]
    schedule = (await manual_stub.GetSchedule(svc.GetScheduleRequest(name="minutely"))).schedule
    assert schedule.last_run_time.ToMilliseconds() == start + 10 * MINUTE_MS
    assert split_job_id(schedule.last_job_id) is not None
    status = await manual_stub.GetStatus(svc.GetStatusRequest(job_id=schedule.last_job_id))
    assert status.job.payload["kind"] == "summary"
    assert schedule.next_run_time.ToMilliseconds() == start + 11 * MINUTE_MS


async def test_a_paused_schedule_makes_no_job_and_resuming_does_not_make_up_the_pause(
    manual_app: tuple[App, ManualClock], manual_stub: Stub
) -> None:
    app, clock = manual_app
    start = clock.ms
    await manual_stub.CreateSchedule(
        svc.CreateScheduleRequest(schedule=every_minute(svc.CATCH_UP_POLICY_ALL))
    )
    await manual_stub.PauseSchedule(svc.PauseScheduleRequest(name="minutely"))
    clock.advance(5 * MINUTE_MS + 1)
    await app.scheduler.run_once()
    assert await queued_ticks(manual_stub) == []

    await manual_stub.ResumeSchedule(svc.ResumeScheduleRequest(name="minutely"))
    clock.advance(MINUTE_MS)
    await app.scheduler.run_once()
    assert await queued_ticks(manual_stub) == [start + 6 * MINUTE_MS]


async def test_a_tick_made_by_two_servers_is_one_job(
    manual_app: tuple[App, ManualClock], manual_stub: Stub, redis: Redis, settings: ServerSettings
) -> None:
    app, clock = manual_app
    other = await start_app(settings, Store(redis, store_config(settings), clock=clock))
    try:
        start = clock.ms
        await manual_stub.CreateSchedule(
            svc.CreateScheduleRequest(schedule=every_minute(svc.CATCH_UP_POLICY_ALL))
        )
        for _ in range(3):
            clock.advance(MINUTE_MS)
            # Both make the same ticks at once: the idempotency key and the cursor make one job each.
            await app.scheduler.run_once()
            await other.scheduler.run_once()
        assert await queued_ticks(manual_stub) == [start + m * MINUTE_MS for m in (1, 2, 3)]
    finally:
        await other.stop(grace_s=0)


async def test_a_schedule_ends_at_its_end_time(
    manual_app: tuple[App, ManualClock], manual_stub: Stub
) -> None:
    app, clock = manual_app
    start = clock.ms
    bounded = every_minute(svc.CATCH_UP_POLICY_ALL)
    bounded.end_time.FromMilliseconds(start + 2 * MINUTE_MS)
    await manual_stub.CreateSchedule(svc.CreateScheduleRequest(schedule=bounded))
    clock.advance(5 * MINUTE_MS)
    await app.scheduler.run_once()

    assert await queued_ticks(manual_stub) == [start + MINUTE_MS, start + 2 * MINUTE_MS]
    ended = (await manual_stub.GetSchedule(svc.GetScheduleRequest(name="minutely"))).schedule
    assert not ended.HasField("next_run_time")


async def test_a_tick_that_cannot_be_enqueued_is_tried_again_a_pass_later_not_at_once(
    redis: Redis, settings: ServerSettings
) -> None:
    full = settings.model_copy(update={"max_queues": 1})
    clock = ManualClock(start_ms=1_800_000_000_000)
    app = await start_app(full, Store(redis, store_config(full), clock=clock))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = svc_grpc.JobQueueServiceStub(channel)
            await stub.Enqueue(svc.EnqueueRequest(queue="the-only-queue"))
            await stub.CreateSchedule(
                svc.CreateScheduleRequest(schedule=every_minute(svc.CATCH_UP_POLICY_SKIP))
            )
            clock.advance(MINUTE_MS)

            delay_s = await app.scheduler.run_once()  # the tick's queue would be one too many

            assert delay_s > 0  # not a pass at once, again and again
            schedule = (await stub.GetSchedule(svc.GetScheduleRequest(name="minutely"))).schedule
            assert schedule.next_run_time.ToMilliseconds() > clock.ms
            assert not schedule.last_job_id
    finally:
        await app.stop(grace_s=0)


async def test_a_schedule_on_a_partitioned_queue_spreads_its_ticks_and_lists_them_as_one_queue(
    manual_app: tuple[App, ManualClock], manual_stub: Stub
) -> None:
    app, clock = manual_app
    start = clock.ms
    await manual_stub.CreateQueue(svc.CreateQueueRequest(queue="reports", partitions=3))
    await manual_stub.CreateSchedule(
        svc.CreateScheduleRequest(schedule=every_minute(svc.CATCH_UP_POLICY_ALL))
    )
    clock.advance(6 * MINUTE_MS + 1)
    await app.scheduler.run_once()

    assert await queued_ticks(manual_stub) == [start + m * MINUTE_MS for m in range(1, 7)]
    listed = svc.ListJobsRequest(queue="reports", state=job_pb2.JOB_STATE_QUEUED, page_size=100)
    partitions = {job.id.rpartition(":")[0] for job in (await manual_stub.ListJobs(listed)).jobs}
    assert partitions == {"reports", "reports~1", "reports~2"}
    (stats,) = (await manual_stub.Stats(svc.StatsRequest(queue="reports"))).queues
    assert (stats.queued, stats.partitions) == (6, 3)
