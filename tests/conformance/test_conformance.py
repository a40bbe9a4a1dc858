"""The conformance scenarios (README.md), run against every language's worker."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from jobqueue import AsyncClient, BackoffPolicy, JobState
from tests.conformance.conftest import Spawn

QUEUE = "conformance"
QUICK_RETRIES = BackoffPolicy(initial_delay=timedelta(milliseconds=10), no_jitter=True)


async def test_a_job_is_leased_and_acked_with_its_result(client: AsyncClient, spawn: Spawn) -> None:
    await spawn()
    job = await client.enqueue(QUEUE, {"action": "ack", "result": {"ok": True, "n": 7}})

    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.result, done.attempts) == (JobState.COMPLETED, {"ok": True, "n": 7}, 1)


async def test_payload_metadata_and_attempt_arrive_intact(client: AsyncClient, spawn: Spawn) -> None:
    await spawn(name="echoer")
    payload: dict[str, Any] = {
        "action": "echo",
        "nested": {"list": [1, 2.5, "x", None, True, {}], "deep": {"deeper": {"deepest": "yes"}}},
        "unicode": "héllo ✓ 日本語 🚀",
        "float": 0.1,
        "negative": -42,
        "largest_exact_integer": 2**53,
        "empty_string": "",
        "empty_list": [],
        "empty_object": {},
    }
    metadata = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "ünï"}
    job = await client.enqueue(QUEUE, payload, metadata=metadata)

    result = (await client.wait(job.job_id, timeout=30)).result

    assert result == {
        "job_id": job.job_id,
        "queue": QUEUE,
        "attempt": 1,
        "max_attempts": 3,
        "payload": payload,
        "metadata": metadata,
        "worker_id": "echoer",
    }


async def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(
    client: AsyncClient, spawn: Spawn
) -> None:
    await spawn()
    payload = {"action": "fail_until", "attempt": 3, "error": "flaky upstream", "result": {"third": "time"}}
    job = await client.enqueue(QUEUE, payload, max_attempts=5, backoff=QUICK_RETRIES)

    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.attempts, done.result) == (JobState.COMPLETED, 3, {"third": "time"})
    # The message may carry more (a traceback, an error type) but must hold the worker's text.
    assert [e.attempt for e in done.errors] == [1, 2]
    assert all("flaky upstream" in e.message for e in done.errors)


async def test_a_job_out_of_attempts_is_dead_with_its_errors(client: AsyncClient, spawn: Spawn) -> None:
    await spawn()
    job = await client.enqueue(
        QUEUE, {"action": "fail", "error": "always"}, max_attempts=2, backoff=QUICK_RETRIES
    )

    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.attempts, len(done.errors)) == (JobState.DEAD, 2, 2)
    assert all("always" in e.message for e in done.errors)


async def test_a_non_retryable_failure_is_dead_after_one_attempt(client: AsyncClient, spawn: Spawn) -> None:
    await spawn()
    job = await client.enqueue(QUEUE, {"action": "fail_permanent", "error": "bad input"}, max_attempts=5)

    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.attempts) == (JobState.DEAD, 1)
    assert "bad input" in done.last_error


async def test_the_lease_is_extended_while_a_long_handler_runs(client: AsyncClient, spawn: Spawn) -> None:
    await spawn()
    payload = {"action": "sleep", "ms": 2500, "result": {"slept": True}}
    job = await client.enqueue(QUEUE, payload, lease_duration=timedelta(seconds=1))

    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.attempts, done.result) == (JobState.COMPLETED, 1, {"slept": True})


async def test_a_paused_worker_loses_its_lease_and_survives_the_refused_ack(
    client: AsyncClient, spawn: Spawn, gate: Path
) -> None:
    first = await spawn(name="first")
    job = await client.enqueue(
        QUEUE,
        {"action": "wait_file", "path": str(gate), "result": {"done": True}},
        lease_duration=timedelta(seconds=1),
    )
    await first.line("START")
    first.signal(signal.SIGSTOP)  # it can neither extend nor ack: the lease expires

    second = await spawn(name="second")
    await second.line("START")
    gate.touch()
    done = await client.wait(job.job_id, timeout=30)
    first.signal(signal.SIGCONT)
    await first.line("END")
    later = await client.enqueue(QUEUE, {"action": "ack", "result": {"after": "resume"}})
    after = await client.wait(later.job_id, timeout=30)

    assert (done.state, done.attempts, done.result) == (JobState.COMPLETED, 2, {"done": True})
    assert after.state == JobState.COMPLETED
    assert first.process.poll() is None, first.output  # the refused ack did not crash it


async def test_a_crashed_workers_job_is_released_at_once(client: AsyncClient, spawn: Spawn) -> None:
    # Ten-minute leases: only the release on disconnect can bring the job back in time.
    first = await spawn(name="first")
    job = await client.enqueue(
        QUEUE, {"action": "exit"}, max_attempts=2, lease_duration=timedelta(minutes=10)
    )
    assert await first.exit_code() == 3
    second = await spawn(name="second", wait_ready=False)  # it may crash before it says READY
    assert await second.exit_code() == 3

    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.attempts) == (JobState.DEAD, 2)
    assert [e.message for e in done.errors] == ["lease released: stream closed"] * 2


async def test_never_more_jobs_run_at_once_than_the_concurrency(
    client: AsyncClient, spawn: Spawn, gate: Path
) -> None:
    worker = await spawn(concurrency=3)
    jobs = [
        await client.enqueue(QUEUE, {"action": "wait_file", "path": str(gate), "result": {}})
        for _ in range(10)
    ]
    await worker.line("START", count=3)
    running_while_blocked = (await client.stats(QUEUE))[0].active

    gate.touch()
    for job in jobs:
        assert (await client.wait(job.job_id, timeout=30)).state == JobState.COMPLETED

    assert running_while_blocked == 3
    assert max_overlap(worker.events()) == 3


def max_overlap(events: list[tuple[str, str]]) -> int:
    running, peak = 0, 0
    for kind, _ in events:
        running += 1 if kind == "START" else -1
        peak = max(peak, running)
    return peak


async def test_sigterm_lets_the_running_job_finish_then_exits_zero(
    client: AsyncClient, spawn: Spawn, gate: Path
) -> None:
    worker = await spawn()
    job = await client.enqueue(QUEUE, {"action": "wait_file", "path": str(gate), "result": {"drained": True}})
    await worker.line("START")

    worker.signal(signal.SIGTERM)
    gate.touch()

    assert await worker.exit_code() == 0, worker.output
    done = await client.get(job.job_id)
    assert (done.state, done.attempts, done.result) == (JobState.COMPLETED, 1, {"drained": True})


async def test_a_window_of_the_biggest_jobs_reaches_a_worker_with_grpcs_default_message_limit(
    client: AsyncClient, spawn: Spawn
) -> None:
    # Six jobs of about 1.3 MB each (a payload near 1 MiB, 64 metadata values of 4 KiB): one
    # window holds 7.9 MB. Workers keep gRPC's default 4 MiB receive limit, so the server must
    # split its responses by their real size, or the worker loses the stream and every attempt.
    payload = {"action": "ack", "result": {"big": True}, "blob": "x" * 1_040_000}
    metadata = {f"key-{index:02d}": "v" * 4096 for index in range(64)}
    jobs = [await client.enqueue(QUEUE, payload, metadata=metadata) for _ in range(6)]

    await spawn(concurrency=6)

    for job in jobs:
        done = await client.wait(job.job_id, timeout=60)
        assert (done.state, done.attempts, done.result) == (JobState.COMPLETED, 1, {"big": True})


# -- running jobs: stops and progress (the client libraries' runtimes) -----------------------

# The Java worker is the example of docs/workers.md, written from the wire protocol alone: a
# worker that ignores JobStop and progress still works (its late ack is refused, its job's
# progress stays unset), so these scenarios are for the three client libraries.
RUNTIMES = {"python", "go", "node"}


def _runtime_only(language: str) -> None:
    if language not in RUNTIMES:
        pytest.skip(f"the {language} worker is a protocol example without stops and progress")


async def test_cancel_of_a_running_job_stops_its_handler_and_the_worker_goes_on(
    client: AsyncClient, spawn: Spawn, language: str
) -> None:
    _runtime_only(language)
    worker = await spawn()
    job = await client.enqueue(QUEUE, {"action": "wait_stop"})
    await worker.line(f"START {job.job_id}")

    await client.cancel(job.job_id)

    await worker.line(f"STOPPED {job.job_id} cancelled")
    assert (await client.get(job.job_id)).state is JobState.CANCELLED
    after = await client.enqueue(QUEUE, {"action": "ack", "result": {"next": True}})
    assert (await client.wait(after.job_id, timeout=30)).result == {"next": True}


async def test_a_job_past_its_execution_timeout_is_stopped_and_fails_as_timed_out(
    client: AsyncClient, spawn: Spawn, language: str
) -> None:
    _runtime_only(language)
    worker = await spawn()
    job = await client.enqueue(
        QUEUE,
        {"action": "wait_stop"},
        execution_timeout=1,
        max_attempts=1,
        lease_duration=timedelta(seconds=10),
    )

    await worker.line(f"STOPPED {job.job_id} timed_out")
    done = await client.wait(job.job_id, timeout=30)

    assert (done.state, done.last_error) == (JobState.DEAD, "timed out after 1 s")


async def test_progress_and_log_lines_of_a_running_job_show_in_its_status(
    client: AsyncClient, spawn: Spawn, gate: Path, language: str
) -> None:
    _runtime_only(language)
    await spawn()
    payload = {
        "action": "progress",
        "percent": 40,
        "message": "halfway",
        "lines": ["fetched", "resized"],
        "path": str(gate),
        "result": {"ok": True},
    }
    job = await client.enqueue(QUEUE, payload)

    async for seen in client.watch(job.job_id, timeout=30):
        if seen.progress is not None and len(seen.logs) == 2:
            break
    assert seen.state is JobState.ACTIVE
    assert (seen.progress.percent, seen.progress.message) == (40, "halfway")  # type: ignore[union-attr]
    assert [entry.line for entry in seen.logs] == ["fetched", "resized"]
    gate.touch()
    assert (await client.wait(job.job_id, timeout=30)).result == {"ok": True}
