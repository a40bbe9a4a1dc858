"""The grpcurl session the README shows, run for real against the service."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from jobqueue_server.runtime.app import App

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "jobqueue.v1.JobQueueService"


def grpcurl_binary() -> str:
    found = ROOT / ".tools" / "bin" / "grpcurl"
    if found.exists():
        return str(found)
    on_path = shutil.which("grpcurl")
    if on_path:
        return on_path
    if os.environ.get("JOBQ_REQUIRE_TOOLS") == "1":
        raise AssertionError("grpcurl is missing: run scripts/tools")
    pytest.skip("grpcurl is not installed (scripts/tools installs it)")


async def grpcurl(app: App, *args: str, data: dict[str, Any] | list[dict[str, Any]] | None = None) -> str:
    """grpcurl's output; `data` is the request, or a stream's requests in order."""
    command = [grpcurl_binary(), "-plaintext"]
    if data is not None:
        messages = data if isinstance(data, list) else [data]
        command += ["-d", "\n".join(json.dumps(message) for message in messages)]
    command += [f"127.0.0.1:{app.port}", *args]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_grpcurl_lists_and_describes_the_service(app: App) -> None:
    services = (await grpcurl(app, "list")).split()
    description = await grpcurl(app, "describe", SERVICE)

    assert {SERVICE, "grpc.health.v1.Health"} <= set(services)
    for rpc in (
        "Enqueue",
        "EnqueueBatch",
        "EnqueueStream",
        "GetStatus",
        "WatchJob",
        "Stats",
        "Lease",
        "Ack",
        "Fail",
        "Extend",
        "Cancel",
        "Retry",
        "PauseQueue",
        "ResumeQueue",
        "SetQueueLimits",
        "CreateSchedule",
        "GetSchedule",
        "ListSchedules",
        "UpdateSchedule",
        "DeleteSchedule",
        "PauseSchedule",
        "ResumeSchedule",
        "CreateWebhook",
        "ListWebhooks",
        "DeleteWebhook",
    ):
        assert f"rpc {rpc}" in description
    assert "JobQueueService queues background jobs" in description  # the proto comments


async def test_grpcurl_enqueues_plain_json_and_reads_it_back(app: App) -> None:
    payload = {"to": "user@example.com", "subject": "Welcome!"}

    enqueued = json.loads(
        await grpcurl(app, f"{SERVICE}/Enqueue", data={"queue": "emails", "payload": payload})
    )
    status = json.loads(await grpcurl(app, f"{SERVICE}/GetStatus", data={"job_id": enqueued["jobId"]}))
    stats = json.loads(await grpcurl(app, f"{SERVICE}/Stats", data={}))
    health = json.loads(await grpcurl(app, "grpc.health.v1.Health/Check"))

    assert enqueued["jobId"].startswith("emails:")
    assert status["job"]["state"] == "JOB_STATE_QUEUED" and status["job"]["payload"] == payload
    assert stats["queues"][0]["queue"] == "emails" and stats["queues"][0]["queued"] == "1"
    assert health["status"] == "SERVING"


async def test_grpcurl_pauses_and_resumes_a_queue(app: App) -> None:
    paused = json.loads(await grpcurl(app, f"{SERVICE}/PauseQueue", data={"queue": "emails"}))
    stats = json.loads(await grpcurl(app, f"{SERVICE}/Stats", data={"queue": "emails"}))
    resumed = json.loads(await grpcurl(app, f"{SERVICE}/ResumeQueue", data={"queue": "emails"}))

    assert paused == {"changed": True} and resumed == {"changed": True}
    assert stats["queues"][0]["paused"] is True


async def test_grpcurl_describes_a_method_with_its_comments(app: App) -> None:
    description = await grpcurl(app, "describe", f"{SERVICE}.EnqueueStream")

    assert "rpc EnqueueStream ( stream .jobqueue.v1.EnqueueStreamRequest )" in description
    assert "in the order they were sent" in description


async def test_grpcurl_sends_batches_on_an_enqueue_stream_and_reads_each_answer(app: App) -> None:
    requests = [
        {"sequence": 1, "requests": [{"queue": "emails", "payload": {"n": 1}}, {"queue": "emails"}]},
        {"sequence": 2, "requests": [{"queue": "not a queue"}]},
        {"sequence": 3, "requests": [{"queue": "emails", "idempotencyKey": "welcome-42"}]},
    ]

    output = await grpcurl(app, f"{SERVICE}/EnqueueStream", data=requests)
    answers = [json.loads(chunk) for chunk in _json_objects(output)]
    stats = json.loads(await grpcurl(app, f"{SERVICE}/Stats", data={"queue": "emails"}))

    assert [a["sequence"] for a in answers] == ["1", "2", "3"]
    assert [len(a.get("responses", [])) for a in answers] == [2, 0, 1]
    assert answers[1]["error"]["code"] == 3  # INVALID_ARGUMENT, the stream went on
    assert answers[1]["error"]["details"][1]["field_violations"][0]["field"] == "requests[0].queue"
    assert stats["queues"][0]["queued"] == "3"


def _json_objects(text: str) -> list[str]:
    """grpcurl prints one pretty JSON object per message: split them."""
    decoder, objects, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        _, end = decoder.raw_decode(text, at)
        objects.append(text[at:end])
        at = end
    return objects


async def test_grpcurl_enqueues_with_time_limits_cancels_and_watches_the_job_to_its_end(app: App) -> None:
    request = {"queue": "emails", "timeout": "30s", "start_deadline": "2030-01-01T00:00:00Z"}
    job_id = json.loads(await grpcurl(app, f"{SERVICE}/Enqueue", data=request))["jobId"]
    status = json.loads(await grpcurl(app, f"{SERVICE}/GetStatus", data={"job_id": job_id}))["job"]
    await grpcurl(app, f"{SERVICE}/Cancel", data={"job_id": job_id})

    watched = await grpcurl(app, f"{SERVICE}/WatchJob", data={"job_id": job_id})  # returns: the job ended

    assert status["timeout"] == "30s" and status["startDeadline"] == "2030-01-01T00:00:00Z"
    assert json.loads(watched)["job"]["state"] == "JOB_STATE_CANCELLED"


async def test_grpcurl_creates_and_reads_a_schedule(app: App) -> None:
    schedule = {
        "name": "digest",
        "cron": "0 8 * * *",
        "time_zone": "Europe/Paris",
        "template": {"queue": "emails"},
    }
    created = json.loads(await grpcurl(app, f"{SERVICE}/CreateSchedule", data={"schedule": schedule}))
    read = json.loads(await grpcurl(app, f"{SERVICE}/GetSchedule", data={"name": "digest"}))

    assert created["schedule"]["nextRunTime"] == read["schedule"]["nextRunTime"]
    assert read["schedule"]["timeZone"] == "Europe/Paris"


async def test_grpcurl_enqueues_a_graph_whose_child_waits_for_its_parents(app: App) -> None:
    graph = {
        "requests": [
            {"queue": "reports", "ref": "report", "depends_on_refs": ["a", "b"]},
            {"queue": "exports", "ref": "a"},
            {"queue": "exports", "ref": "b"},
        ]
    }
    report, *exports = (
        r["jobId"] for r in json.loads(await grpcurl(app, f"{SERVICE}/EnqueueBatch", data=graph))["responses"]
    )
    waiting = json.loads(await grpcurl(app, f"{SERVICE}/GetStatus", data={"job_id": report}))["job"]
    for export in exports:
        await grpcurl(app, f"{SERVICE}/Cancel", data={"job_id": export})

    ended = json.loads(
        await grpcurl(app, f"{SERVICE}/WatchJob", data={"job_id": report})
    )  # returns: it ended

    assert waiting["state"] == "JOB_STATE_WAITING" and waiting["dependsOn"] == exports
    assert ended["job"]["state"] == "JOB_STATE_CANCELLED"
    assert ended["job"]["lastError"].startswith("dependency exports:")
