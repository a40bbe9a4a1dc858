"""AsyncClient against the in-process server: enqueue, inspect, cancel, retry, wait."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import (
    AsyncClient,
    BackoffPolicy,
    Client,
    InvalidArgument,
    JobSpec,
    JobState,
    NotFound,
    Priority,
    Unavailable,
    WrongState,
)
from tests.client.conftest import WorkerRunner

UNKNOWN_JOB = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"


async def test_enqueue_then_get_returns_the_job_with_typed_fields(client: AsyncClient, queue: str) -> None:
    result = await client.enqueue(
        queue,
        {"user": 7, "ratio": 0.5, "tags": ["a", "b"], "nested": {"ok": True, "none": None}},
        priority="high",
        max_attempts=5,
        lease_duration=timedelta(seconds=90),
        metadata={"tenant": "acme"},
        backoff=BackoffPolicy(initial_delay=2, max_delay=timedelta(minutes=1), multiplier=3, no_jitter=True),
    )

    job = await client.get(result.job_id)

    assert result.job_id.startswith(f"{queue}:") and not result.duplicate
    assert (job.id, job.queue, job.state, job.priority) == (
        result.job_id,
        queue,
        JobState.QUEUED,
        Priority.HIGH,
    )
    assert job.payload == {"user": 7, "ratio": 0.5, "tags": ["a", "b"], "nested": {"ok": True, "none": None}}
    assert (job.attempts, job.max_attempts, job.result, job.errors) == (0, 5, None, [])
    assert job.metadata == {"tenant": "acme"}
    assert job.lease_duration == timedelta(seconds=90)
    assert job.backoff == BackoffPolicy(
        initial_delay=timedelta(seconds=2),
        max_delay=timedelta(minutes=1),
        multiplier=3,
        jitter=0,
        no_jitter=True,
    )
    assert job.create_time is not None and job.create_time.tzinfo is UTC
    assert abs(datetime.now(UTC) - job.create_time) < timedelta(minutes=1)


async def test_a_bytes_payload_is_kept_as_bytes(client: AsyncClient, queue: str) -> None:
    result = await client.enqueue(queue, b"\x00\x01binary")

    job = await client.get(result.job_id)

    assert (job.payload_bytes, job.payload) == (b"\x00\x01binary", {})


async def test_the_same_idempotency_key_returns_the_first_job(client: AsyncClient, queue: str) -> None:
    first = await client.enqueue(queue, {"n": 1}, idempotency_key="order-42")
    second = await client.enqueue(queue, {"n": 2}, idempotency_key="order-42")

    assert (second.job_id, second.duplicate) == (first.job_id, True)


async def test_delay_and_run_at_schedule_the_job(client: AsyncClient, queue: str) -> None:
    delayed = await client.enqueue(queue, delay=3600)
    at = datetime.now(UTC) + timedelta(hours=2)
    timed = await client.enqueue(queue, run_at=at)

    delayed_job, timed_job = await client.get(delayed.job_id), await client.get(timed.job_id)

    assert (delayed_job.state, timed_job.state) == (JobState.SCHEDULED, JobState.SCHEDULED)
    assert timed_job.schedule_time is not None
    assert abs(timed_job.schedule_time - at) < timedelta(milliseconds=2)


async def test_stats_count_jobs_by_state(client: AsyncClient, queue: str) -> None:
    await client.enqueue(queue)
    await client.enqueue(queue)
    await client.enqueue(queue, delay=timedelta(hours=1))

    (stats,) = await client.stats(queue)
    every = await client.stats()

    assert (stats.queue, stats.queued, stats.scheduled, stats.active, stats.completed) == (queue, 2, 1, 0, 0)
    assert stats.oldest_queued_age >= timedelta(0)
    assert queue in [s.queue for s in every]


async def test_cancel_then_retry_sends_the_job_back_to_its_queue(client: AsyncClient, queue: str) -> None:
    result = await client.enqueue(queue, delay=3600)

    await client.cancel(result.job_id)
    cancelled = await client.wait(result.job_id, timeout=5)
    await client.retry(result.job_id)

    assert cancelled.state == JobState.CANCELLED and cancelled.finish_time is not None
    assert (await client.get(result.job_id)).state == JobState.QUEUED


async def test_a_paused_queue_keeps_its_jobs_from_workers_until_resumed(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    held, running = f"{queue}-held", f"{queue}-open"
    assert await client.pause_queue(held) is True
    assert await client.pause_queue(held) is False
    handlers = {held: lambda payload, ctx: {"from": "held"}, running: lambda payload, ctx: {"from": "open"}}
    workers.start(workers.new([held, running], handlers=handlers))
    kept = await client.enqueue(held)
    passed = await client.enqueue(running)

    assert (await client.wait(passed.job_id, timeout=10)).state == JobState.COMPLETED
    assert (await client.get(kept.job_id)).state == JobState.QUEUED
    (stats,) = await client.stats(held)
    assert stats.paused and stats.queued == 1
    assert await client.resume_queue(held) is True
    assert (await client.wait(kept.job_id, timeout=10)).result == {"from": "held"}


async def test_the_sync_client_pauses_and_resumes_too(sync_client: Client, queue: str) -> None:
    # In a thread: the in-process server runs on this test's event loop.
    def scenario() -> tuple[bool, bool, bool, bool]:
        paused = sync_client.pause_queue(queue)
        shown = sync_client.stats(queue)[0].paused
        return paused, shown, sync_client.resume_queue(queue), sync_client.resume_queue(queue)

    assert await asyncio.to_thread(scenario) == (True, True, True, False)


async def test_wait_returns_once_a_worker_completed_the_job(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    worker = workers.new(handlers={queue: lambda payload, ctx: {"double": payload["n"] * 2}})
    workers.start(worker)

    result = await client.enqueue(queue, {"n": 21})
    job = await client.wait(result.job_id, timeout=10)

    assert (job.state, job.result, job.attempts) == (JobState.COMPLETED, {"double": 42}, 1)


async def test_wait_raises_timeout_error_when_the_job_does_not_finish(
    client: AsyncClient, queue: str
) -> None:
    result = await client.enqueue(queue, delay=3600)

    with pytest.raises(TimeoutError):
        await client.wait(result.job_id, timeout=0.2)


async def test_enqueue_many_returns_results_in_order_across_chunks(client: AsyncClient, queue: str) -> None:
    specs: list[JobSpec | dict[str, object]] = [JobSpec(queue=queue, payload={"i": i}) for i in range(1000)]
    specs.append({"queue": queue, "payload": {"i": 1000}, "priority": "low"})

    results = await client.enqueue_many(specs)

    assert len({r.job_id for r in results}) == 1001
    assert (await client.get(results[0].job_id)).payload == {"i": 0}
    last = await client.get(results[-1].job_id)
    assert (last.payload, last.priority) == ({"i": 1000}, Priority.LOW)
    (stats,) = await client.stats(queue)
    assert stats.queued == 1001


async def test_enqueue_many_names_the_bad_job_by_its_index_in_the_whole_list(
    client: AsyncClient, queue: str
) -> None:
    specs = [JobSpec(queue=queue) for _ in range(1000)] + [JobSpec(queue="not a queue!")]

    with pytest.raises(InvalidArgument) as caught:
        await client.enqueue_many(specs)

    assert caught.value.field == "requests[1000].queue"


async def test_a_bad_queue_name_is_invalid_argument_naming_the_field(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.enqueue("not a queue!", {"x": 1})

    assert caught.value.field == "queue"
    assert caught.value.reason == "INVALID_ARGUMENT"
    assert isinstance(caught.value, ValueError)


async def test_a_malformed_job_id_is_invalid_argument(client: AsyncClient) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await client.get("nope")

    assert caught.value.field == "job_id"


async def test_an_unknown_job_is_not_found(client: AsyncClient) -> None:
    with pytest.raises(NotFound) as caught:
        await client.get(UNKNOWN_JOB)

    assert caught.value.reason == "JOB_NOT_FOUND"


async def test_cancelling_a_completed_job_is_wrong_state(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    workers.start(workers.new(handlers={queue: lambda payload, ctx: None}))
    result = await client.enqueue(queue)
    await client.wait(result.job_id, timeout=10)

    with pytest.raises(WrongState) as caught:
        await client.cancel(result.job_id)

    assert caught.value.reason == "WRONG_STATE"


async def test_arguments_are_checked_before_anything_is_sent(client: AsyncClient, queue: str) -> None:
    naive = datetime.now()  # noqa: DTZ005 - the point of the test
    with pytest.raises(InvalidArgument, match="timezone-aware") as caught:
        await client.enqueue(queue, run_at=naive)
    assert caught.value.field == "run_at"
    with pytest.raises(InvalidArgument, match="JSON"):
        await client.enqueue(queue, {"when": datetime.now(UTC)})
    with pytest.raises(InvalidArgument, match="at most one"):
        await client.enqueue(queue, delay=1, run_at=datetime.now(UTC))
    with pytest.raises(InvalidArgument, match="priority"):
        await client.enqueue(queue, priority="urgent")  # type: ignore[arg-type]
    assert await client.stats(queue) == [] or (await client.stats(queue))[0].queued == 0


async def test_a_misspelt_option_or_a_job_without_a_queue_is_refused_naming_it(
    client: AsyncClient, queue: str
) -> None:
    with pytest.raises(InvalidArgument) as misspelt:
        await client.enqueue(queue, {"n": 1}, priorty="high")  # type: ignore[call-arg]
    with pytest.raises(InvalidArgument) as unnamed:
        await client.enqueue_many([JobSpec(queue=queue), {"payload": {"n": 2}}])

    assert misspelt.value.field == "priorty"
    assert unnamed.value.field == "requests[1].queue"
    assert all(stats.queued == 0 for stats in await client.stats(queue))


async def test_an_unreachable_server_is_unavailable() -> None:
    async with AsyncClient("127.0.0.1:1", timeout=2) as client:
        with pytest.raises(Unavailable):
            await client.get(UNKNOWN_JOB)


async def test_a_shared_channel_is_left_open(target: str, queue: str) -> None:
    import grpc

    async with grpc.aio.insecure_channel(target) as channel:
        async with AsyncClient(channel) as client:
            await client.enqueue(queue)
        async with AsyncClient(channel) as client:
            (stats,) = await client.stats(queue)

    assert stats.queued == 1
    await asyncio.sleep(0)


async def test_list_jobs_filters_by_metadata_and_enqueue_time_on_the_server(
    client: AsyncClient, queue: str
) -> None:
    before = datetime.now(UTC) - timedelta(minutes=1)
    ids = [(await client.enqueue(queue, {}, metadata={"customer": c})).job_id for c in ("acme", "x", "acme")]

    acme = [
        job.id async for job in client.list_jobs(queue, "queued", page_size=1, metadata={"customer": "acme"})
    ]
    recent = [job.id async for job in client.list_jobs(queue, "queued", created_after=before)]
    old = [job.id async for job in client.list_jobs(queue, "queued", created_before=before)]

    assert acme == [ids[0], ids[2]]
    assert recent == ids and old == []


async def test_list_jobs_pages_through_a_state_in_order(client: AsyncClient, queue: str) -> None:
    ids = [(await client.enqueue(queue, {"n": n})).job_id for n in range(5)]

    listed = [job.id async for job in client.list_jobs(queue, "queued", page_size=2)]

    assert listed == ids  # one priority level: first in, first leased


async def test_the_sync_client_lists_jobs_too(sync_client: Client, queue: str) -> None:
    # In a thread: the in-process server runs on this test's event loop.
    def scenario() -> tuple[str, list[str]]:
        job_id = sync_client.enqueue(queue, {"n": 1}).job_id
        sync_client.cancel(job_id)
        return job_id, [job.id for job in sync_client.list_jobs(queue, JobState.CANCELLED)]

    job_id, listed = await asyncio.to_thread(scenario)

    assert listed == [job_id]
    with pytest.raises(InvalidArgument) as raised:
        await asyncio.to_thread(lambda: list(sync_client.list_jobs(queue, "sleeping")))
    assert raised.value.field == "state"
