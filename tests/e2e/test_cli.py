"""The producer commands of `jobq` run as subprocesses against a real `jobq serve` process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from jobqueue import AsyncClient, Client, JobContext, JobState, NonRetryableError, Worker
from tests.processes import ServeProcess, child_env
from tests.support import TestRedis

CLI_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 30.0
UNKNOWN_JOB = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"  # well formed, never enqueued


@dataclass
class Jobq:
    """Runs `python -m jobqueue_server ARGS` with JOBQ_TARGET pointing at the test server."""

    target: str

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobqueue_cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=child_env({"JOBQ_TARGET": self.target}),
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    def json(self, *args: str, stdin: str | None = None) -> Any:
        result = self(*args, "--json", stdin=stdin)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def server(test_redis: TestRedis) -> Iterator[ServeProcess]:
    """One server for the module; each test isolates itself with its own queue names."""
    process = ServeProcess(["--redis-url", test_redis.url], {"JOBQ_KEY_PREFIX": f"t{uuid.uuid4().hex[:12]}"})
    yield process
    process.close()


@pytest.fixture
def jobq(server: ServeProcess) -> Jobq:
    return Jobq(server.target)


@pytest.fixture
def client(server: ServeProcess) -> Iterator[Client]:
    with Client(server.target) as producer:
        yield producer


@pytest.fixture
def queue() -> str:
    return f"q{uuid.uuid4().hex[:10]}"


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_enqueue_prints_the_job_id_and_status_shows_the_job(jobq: Jobq, queue: str) -> None:
    result = jobq("enqueue", queue, '{"to":"user@example.com","subject":"Welcome!"}')

    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[-1]
    assert result.stdout.startswith("enqueued ") and job_id.startswith(f"{queue}:")
    shown = jobq("status", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "QUEUED" in shown.stdout and "Welcome!" in shown.stdout and "0 of 3" in shown.stdout
    job = jobq.json("status", job_id)
    assert job["state"] == "queued" and job["payload"] == {"to": "user@example.com", "subject": "Welcome!"}


def test_enqueue_json_applies_every_option(jobq: Jobq, queue: str, client: Client) -> None:
    options = ["--priority", "high", "--delay", "60", "--max-attempts", "5", "--metadata", "tenant=acme"]
    first = jobq.json("enqueue", queue, '{"n": 1}', *options, "--idempotency-key", "k1")
    again = jobq.json("enqueue", queue, '{"n": 2}', "--idempotency-key", "k1")

    job = client.get(first["job_id"])
    assert first["duplicate"] is False and again == {"job_id": first["job_id"], "duplicate": True}
    assert (job.state, job.priority, job.max_attempts) == (JobState.SCHEDULED, "high", 5)
    assert job.metadata == {"tenant": "acme"} and job.payload == {"n": 1}


def test_enqueue_reads_the_payload_from_stdin(jobq: Jobq, queue: str, client: Client) -> None:
    result = jobq.json("enqueue", queue, "-", stdin='{"from": "stdin"}')

    assert client.get(result["job_id"]).payload == {"from": "stdin"}


def test_enqueue_file_sends_bare_payloads_and_jobs_naming_their_queue(
    jobq: Jobq, queue: str, client: Client, tmp_path: Path
) -> None:
    lines = [json.dumps({"n": n}) for n in range(1500)]  # two EnqueueBatch calls
    lines += ["", json.dumps({"queue": f"{queue}-other", "payload": {"x": 1}, "priority": "high"})]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("\n".join(lines) + "\n")

    result = jobq.json("enqueue", queue, "--file", str(jobs_file))
    human = jobq("enqueue", queue, "--file", str(jobs_file))

    assert result["enqueued"] == 1501 and result["duplicates"] == 0 and len(result["jobs"]) == 1501
    assert human.returncode == 0 and "enqueued 1501 jobs" in human.stdout, human.stderr
    last = client.get(result["jobs"][-1]["job_id"])
    assert last.queue == f"{queue}-other" and last.priority == "high" and last.payload == {"x": 1}
    counts = {s["queue"]: s["queued"] for s in jobq.json("stats")["queues"]}
    assert counts[queue] == 3000 and counts[f"{queue}-other"] == 2


def test_enqueue_file_names_the_bad_line_and_sends_nothing(
    jobq: Jobq, queue: str, client: Client, tmp_path: Path
) -> None:
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text('{"n": 1}\n{"queue": "no spaces", "payload": {}}\n')

    result = jobq("enqueue", queue, "--file", str(jobs_file))

    assert result.returncode == 2
    assert one_error_line(result).startswith("error: INVALID_ARGUMENT line 2: queue: must be")
    assert client.stats(queue)[0].queued == 0


def test_stats_json_counts_jobs_by_state(jobq: Jobq, queue: str, client: Client) -> None:
    client.enqueue(queue, {"n": 1})
    client.enqueue(queue, {"n": 2}, delay=600)

    (stats,) = jobq.json("stats", queue)["queues"]
    table = jobq("stats", queue)

    assert stats["queue"] == queue and (stats["queued"], stats["scheduled"], stats["dead"]) == (1, 1, 0)
    assert stats["oldest_queued_age"] >= 0
    assert table.returncode == 0 and queue in table.stdout and "scheduled" in table.stdout


def test_pause_holds_a_queue_and_resume_lets_it_go(jobq: Jobq, queue: str, client: Client) -> None:
    paused = jobq("pause", queue)
    again = jobq.json("pause", queue)
    client.enqueue(queue, {"n": 1})
    (stats,) = jobq.json("stats", queue)["queues"]
    table = jobq("stats", queue)
    resumed = jobq("resume", queue)

    assert paused.returncode == 0 and f"paused {queue}" in paused.stdout, paused.stderr
    assert again["results"] == [{"queue": queue, "changed": False}]
    assert stats["paused"] is True and stats["queued"] == 1
    assert "(paused)" in table.stdout
    assert resumed.returncode == 0 and f"resumed {queue}" in resumed.stdout, resumed.stderr
    assert client.stats(queue)[0].paused is False


def test_pause_of_a_bad_queue_name_exits_2_naming_the_field(jobq: Jobq) -> None:
    result = jobq("pause", "has space")

    assert result.returncode == 2
    assert one_error_line(result).startswith("error: INVALID_ARGUMENT queue: ")


def test_schedule_create_list_get_pause_resume_and_delete(jobq: Jobq, queue: str) -> None:
    name = f"nightly-{queue}"
    created = jobq(
        "schedule", "create", name, queue, '{"kind":"daily"}', "--cron", "30 2 * * *", "--tz", "Europe/Paris"
    )
    listed = jobq("schedule", "list")
    shown = jobq.json("schedule", "get", name)
    paused = jobq.json("schedule", "pause", name)
    resumed = jobq("schedule", "resume", name)
    deleted = jobq("schedule", "delete", name)
    gone = jobq("schedule", "get", name)

    assert created.returncode == 0 and f"created schedule {name}: next run 20" in created.stdout, (
        created.stderr
    )
    assert name in listed.stdout and "30 2 * * * (Europe/Paris)" in listed.stdout
    assert shown["queue"] == queue and shown["payload"] == {"kind": "daily"} and shown["cron"] == "30 2 * * *"
    assert paused["results"] == [{"name": name, "changed": True}]
    assert resumed.returncode == 0 and f"resumed {name}" in resumed.stdout
    assert deleted.returncode == 0 and f"deleted {name}" in deleted.stdout
    assert gone.returncode != 0 and "SCHEDULE_NOT_FOUND" in one_error_line(gone)


def test_an_every_second_schedule_makes_jobs_shown_by_get(jobq: Jobq, queue: str, client: Client) -> None:
    name = f"pulse-{queue}"
    assert jobq("schedule", "create", name, queue, "--every", "1").returncode == 0
    deadline = time.monotonic() + 10
    while not (last := jobq.json("schedule", "get", name)["last_job_id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    jobq("schedule", "delete", name)

    assert client.get(last).queue == queue


def test_schedule_with_a_bad_cron_exits_2_naming_the_field(jobq: Jobq, queue: str) -> None:
    result = jobq("schedule", "create", f"bad-{queue}", queue, "--cron", "every day")

    assert result.returncode == 2
    assert one_error_line(result).startswith("error: INVALID_ARGUMENT schedule.cron: ")


def test_cancel_then_retry_moves_the_job_and_reports_each_id(jobq: Jobq, queue: str, client: Client) -> None:
    job_id = client.enqueue(queue, {"n": 1}, delay=600).job_id

    cancelled = jobq("cancel", job_id)
    state_after_cancel = client.get(job_id).state
    retried = jobq.json("retry", job_id)

    assert cancelled.returncode == 0 and f"cancelled {job_id}" in cancelled.stdout, cancelled.stderr
    assert state_after_cancel == JobState.CANCELLED
    assert retried == {"results": [{"job_id": job_id, "ok": True}]}
    assert client.get(job_id).state == JobState.QUEUED


def test_cancel_goes_on_past_a_failure_and_exits_1(jobq: Jobq, queue: str, client: Client) -> None:
    job_id = client.enqueue(queue, {"n": 1}).job_id

    result = jobq("cancel", UNKNOWN_JOB, job_id)

    assert result.returncode == 1
    assert one_error_line(result) == f"error: JOB_NOT_FOUND job {UNKNOWN_JOB} not found"
    assert client.get(job_id).state == JobState.CANCELLED


async def test_dead_retry_redrives_a_dead_job(jobq: Jobq, queue: str, server: ServeProcess) -> None:
    async def refuse(payload: dict[str, Any], ctx: JobContext) -> None:
        raise NonRetryableError("bad payload")

    async with AsyncClient(server.target) as producer:
        job_id = (await producer.enqueue(queue, {"n": 1})).job_id
        worker = Worker(server.target, [queue], handlers={queue: refuse})
        running = asyncio.create_task(worker.run())
        dead = await producer.wait(job_id, timeout=JOB_TIMEOUT_S)
        worker.stop(now=True)
        await running

        result = await asyncio.to_thread(jobq, "dead", "retry", job_id)
        job = await producer.get(job_id)

    assert dead.state == JobState.DEAD and "bad payload" in dead.errors[-1].message
    assert result.returncode == 0 and f"requeued {job_id}" in result.stdout, result.stderr
    assert job.state == JobState.QUEUED and job.attempts == 0


async def test_dead_list_shows_dead_jobs_and_retry_all_redrives_them(
    jobq: Jobq, queue: str, server: ServeProcess
) -> None:
    async def refuse(payload: dict[str, Any], ctx: JobContext) -> None:
        raise NonRetryableError(f"bad payload {payload['n']}")

    async with AsyncClient(server.target) as producer:
        ids = [(await producer.enqueue(queue, {"n": n})).job_id for n in range(3)]
        worker = Worker(server.target, [queue], handlers={queue: refuse})
        running = asyncio.create_task(worker.run())
        for job_id in ids:
            await producer.wait(job_id, timeout=JOB_TIMEOUT_S)
        worker.stop(now=True)
        await running

        listed = await asyncio.to_thread(jobq, "dead", "list", queue, "--json")
        table = await asyncio.to_thread(jobq, "dead", "list", queue)
        retried = await asyncio.to_thread(jobq, "dead", "retry", "--all", queue)
        states = [(await producer.get(job_id)).state for job_id in ids]

    document = json.loads(listed.stdout)
    assert document["total"] == 3 and {job["id"] for job in document["jobs"]} == set(ids)
    assert "3 of 3 dead jobs" in table.stdout and "bad payload" in table.stdout
    assert retried.returncode == 0, retried.stderr
    assert states == [JobState.QUEUED] * 3


async def test_error_texts_reach_the_terminal_as_text_not_escape_sequences_or_markup(
    jobq: Jobq, queue: str, server: ServeProcess
) -> None:
    hostile = "\x1b]0;owned\x07\x1b[2J[bold red]loud[/] \u202egnp.exe"

    async def refuse(payload: dict[str, Any], ctx: JobContext) -> None:
        raise NonRetryableError(hostile)

    async with AsyncClient(server.target) as producer:
        job_id = (await producer.enqueue(queue, {"n": 1})).job_id
        worker = Worker(server.target, [queue], handlers={queue: refuse})
        running = asyncio.create_task(worker.run())
        await producer.wait(job_id, timeout=JOB_TIMEOUT_S)
        worker.stop(now=True)
        await running

        listed = await asyncio.to_thread(jobq, "dead", "list", queue)
        status = await asyncio.to_thread(jobq, "status", job_id)

    for output in (listed.stdout, status.stdout):
        assert "\x1b" not in output and "\u202e" not in output  # nothing that drives the terminal
        assert "\\x1b]0;owned\\x07" in output and "\\u202e" in output  # shown as escapes
    assert "[bold red]loud[/]" in status.stdout  # markup is shown, not applied


def test_an_invalid_queue_name_exits_2_with_one_line_naming_the_field(jobq: Jobq) -> None:
    result = jobq("enqueue", "no spaces allowed", "{}")

    assert result.returncode == 2 and result.stdout == ""
    assert one_error_line(result).startswith("error: INVALID_ARGUMENT queue: must be")


def test_a_payload_that_is_not_a_json_object_exits_2(jobq: Jobq, queue: str) -> None:
    not_json = jobq("enqueue", queue, "{to: nobody}")
    not_object = jobq("enqueue", queue, "[1, 2]")

    assert (not_json.returncode, not_object.returncode) == (2, 2)
    assert one_error_line(not_json).startswith("error: INVALID_ARGUMENT payload: not valid JSON")
    assert one_error_line(not_object) == "error: INVALID_ARGUMENT payload: must be a JSON object, got list"


def test_an_unknown_job_exits_1_and_says_not_found(jobq: Jobq) -> None:
    result = jobq("status", UNKNOWN_JOB)

    assert result.returncode == 1 and result.stdout == ""
    assert one_error_line(result) == f"error: JOB_NOT_FOUND job {UNKNOWN_JOB} not found"


def test_an_unreachable_server_exits_1_and_names_the_target(jobq: Jobq) -> None:
    result = jobq("stats", "--target", "127.0.0.1:1", "--timeout", "5")

    assert result.returncode == 1
    assert one_error_line(result).startswith("error: UNAVAILABLE cannot reach the server at 127.0.0.1:1")


@pytest.mark.parametrize("batch", ["0", "30"])
def test_load_enqueues_count_jobs_and_reports_the_rate(
    jobq: Jobq, queue: str, client: Client, batch: str
) -> None:
    report = jobq.json("load", queue, "--count", "100", "--concurrency", "100", "--batch", batch)
    human = jobq("load", queue, "--count", "10", "--payload", '{"kind": "load"}')

    assert report["jobs"] == 100 and report["failed"] == 0 and report["jobs_per_second"] > 0
    assert report["calls"] == (100 if batch == "0" else 4)
    assert human.returncode == 0 and "enqueued 10 jobs" in human.stdout and "jobs/s" in human.stdout
    assert client.stats(queue)[0].queued == 110


def test_limit_sets_and_removes_a_queues_limits_shown_by_stats(
    jobq: Jobq, queue: str, client: Client
) -> None:
    limited = jobq("limit", queue, "--rate", "5", "--burst", "2", "--max-active", "3")
    (stats,) = jobq.json("stats", queue)["queues"]
    table = jobq("stats", queue)
    removed = jobq("limit", queue)

    assert limited.returncode == 0 and f"limited {queue}: 5/s (burst 2), 3 active at most" in limited.stdout
    assert stats["limits"] == {
        "rate_per_second": 5.0,
        "burst": 2,
        "max_active": 3,
        "group_rate_per_second": 0.0,
        "group_burst": 0,
        "group_max_active": 0,
    }
    assert "5/s, 3 active" in table.stdout
    assert removed.returncode == 0 and client.stats(queue)[0].limits is None


def test_enqueue_with_a_unique_key_and_a_start_deadline_then_watch_the_job_end(
    jobq: Jobq, queue: str, client: Client
) -> None:
    first = jobq.json("enqueue", queue, "{}", "--unique-key", "report-1", "--start-within", "600")
    again = jobq.json("enqueue", queue, "{}", "--unique-key", "report-1")
    client.cancel(first["job_id"])
    watched = jobq("watch", first["job_id"])

    assert again["job_id"] == first["job_id"] and again["duplicate"] is True
    assert client.get(first["job_id"]).start_deadline is not None
    assert watched.returncode == 1 and watched.stdout.strip().splitlines()[-1] == "cancelled"


def test_enqueue_with_depends_on_waits_and_status_and_stats_show_it(
    jobq: Jobq, queue: str, client: Client
) -> None:
    parent = client.enqueue(queue, {})
    child = jobq.json(
        "enqueue", queue, "{}", "--depends-on", parent.job_id, "--on-dependency-failure", "run_anyway"
    )
    status = jobq("status", child["job_id"])
    stats = jobq("stats", queue)
    client.cancel(parent.job_id)

    assert "WAITING" in status.stdout and parent.job_id in status.stdout and "run_anyway" in status.stdout
    assert "waiting" in stats.stdout
    assert client.get(child["job_id"]).depends_on == [parent.job_id]
    # run_anyway: the cancelled parent counts as done, and the child is queued.
    for job in client.watch(child["job_id"], timeout=10):
        if job.state.value == "queued":
            break
    else:
        raise AssertionError("the child was not queued")


def test_create_queue_partitions_a_queue_and_enqueue_places_by_partition_key(
    jobq: Jobq, queue: str, client: Client
) -> None:
    made = jobq("create-queue", queue, "--partitions", "3")
    again = jobq.json("create-queue", queue, "--partitions", "3")
    fewer = jobq("create-queue", queue, "--partitions", "2")
    ids = [jobq.json("enqueue", queue, "{}", "--partition-key", "acme")["job_id"] for _ in range(3)]
    (stats,) = jobq.json("stats", queue)["queues"]

    assert made.returncode == 0 and f"{queue} now has 3 partitions" in made.stdout
    assert again == {"queue": queue, "partitions": 3, "changed": False}
    assert fewer.returncode != 0 and "partitions" in fewer.stderr
    assert len({job_id.rpartition(":")[0] for job_id in ids}) == 1  # one key, one partition
    assert stats["partitions"] == 3 and stats["queued"] == 3


def test_limit_per_group_and_enqueue_with_a_group_key(jobq: Jobq, queue: str, client: Client) -> None:
    limited = jobq("limit", queue, "--group-max-active", "1", "--group-rate", "2")
    enqueued = jobq.json("enqueue", queue, "{}", "--group-key", "acme")
    table = jobq("stats", queue)

    assert limited.returncode == 0 and "1 active at most per group" in limited.stdout
    assert client.get(enqueued["job_id"]).group_key == "acme"
    assert "1 active per group" in table.stdout
    limits = client.stats(queue)[0].limits
    assert limits is not None and (limits.group_max_active, limits.group_rate_per_second) == (1, 2.0)


def test_webhook_create_list_and_delete(jobq: Jobq, client: Client) -> None:
    made = jobq.json(
        "webhook",
        "create",
        "http://127.0.0.1:9/alerts",
        "--queue",
        "emails",
        "--dead-jobs",
        "5",
        "--allow-private",
    )
    refused = jobq("webhook", "create", "http://127.0.0.1:9/alerts")  # a private address, not allowed
    table = jobq("webhook", "list")
    webhook_id = made["info"]["webhook_id"]
    deleted = jobq("webhook", "delete", webhook_id)

    assert len(made["secret"]) >= 40 and made["info"]["queue"] == "emails"
    assert (
        refused.returncode == 2
        and "webhook.url" in refused.stderr
        and "not a public address" in refused.stderr
    )
    assert webhook_id in table.stdout and "5+ dead jobs" in table.stdout
    assert deleted.returncode == 0 and client.list_webhooks() == []
