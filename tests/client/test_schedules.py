"""Schedules from the Python clients: a schedule's jobs reach a worker with the template's
payload and options; its definition, next and last run read back; typed errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import AsyncClient, Client, InvalidArgument, JobState, ScheduleExists, ScheduleNotFound
from tests.client.conftest import WorkerRunner


async def test_an_every_second_schedule_makes_jobs_a_worker_runs(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    seen: list[tuple[dict[str, object], str]] = []
    workers.start(
        workers.new(handlers={queue: lambda payload, ctx: seen.append((payload, ctx.metadata["team"]))})
    )
    created = await client.create_schedule(
        "pulse", queue, {"check": "disk"}, every=1, priority="high", metadata={"team": "ops"}
    )
    assert created.every == timedelta(seconds=1) and created.cron is None
    assert created.priority == "high" and created.next_run_at is not None

    async with asyncio.timeout(10):
        while (schedule := await client.get_schedule("pulse")).last_job_id == "":
            await asyncio.sleep(0.1)
    job = await client.wait(schedule.last_job_id, timeout=10)
    assert job.state is JobState.COMPLETED and job.payload == {"check": "disk"}
    assert ({"check": "disk"}, "ops") in seen
    assert schedule.last_run_at is not None and schedule.next_run_at is not None
    assert schedule.next_run_at > schedule.last_run_at
    await client.delete_schedule("pulse")


async def test_a_cron_schedule_reads_back_updates_pauses_and_goes(client: AsyncClient, queue: str) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    created = await client.create_schedule(
        "nightly", queue, cron="30 2 * * *", time_zone="Europe/Paris", start=start, catch_up="all",
        catch_up_limit=5, max_attempts=7,
    )  # fmt: skip
    assert (created.cron, created.time_zone, created.start, created.catch_up) == (
        "30 2 * * *", "Europe/Paris", start, "all",
    )  # fmt: skip
    assert created.next_run_at == datetime(2030, 1, 1, 1, 30, tzinfo=UTC)  # 02:30 in Paris, winter
    assert [s.name for s in [s async for s in client.list_schedules()]] == ["nightly"]

    updated = await client.update_schedule(
        "nightly", queue, {"v": 2}, cron="0 3 * * *", time_zone="Europe/Paris"
    )
    assert updated.payload == {"v": 2} and updated.created_at == created.created_at
    assert await client.pause_schedule("nightly") is True
    assert (await client.get_schedule("nightly")).next_run_at is None
    assert await client.resume_schedule("nightly") is True

    with pytest.raises(ScheduleExists):
        await client.create_schedule("nightly", queue, every=60)
    with pytest.raises(InvalidArgument) as bad:
        await client.create_schedule("other", queue, cron="at noon")
    assert bad.value.field == "schedule.cron"
    with pytest.raises(InvalidArgument) as both:
        await client.create_schedule("other", queue, cron="* * * * *", every=5)
    assert both.value.field == "cron"
    await client.delete_schedule("nightly")
    with pytest.raises(ScheduleNotFound):
        await client.get_schedule("nightly")


async def test_the_sync_client_manages_schedules_too(sync_client: Client, queue: str) -> None:
    # In a thread: the in-process server runs on this test's event loop.
    def scenario() -> tuple[str, bool, bool, list[str]]:
        made = sync_client.create_schedule("hourly", queue, cron="@hourly")
        paused = sync_client.pause_schedule("hourly")
        again = sync_client.pause_schedule("hourly")
        names = [s.name for s in sync_client.list_schedules()]
        sync_client.delete_schedule("hourly")
        return made.name, paused, again, names

    assert await asyncio.to_thread(scenario) == ("hourly", True, False, ["hourly"])
