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


async def grpcurl(app: App, *args: str, data: dict[str, Any] | None = None) -> str:
    command = [grpcurl_binary(), "-plaintext"]
    if data is not None:
        command += ["-d", json.dumps(data)]
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
        "GetStatus",
        "Stats",
        "Lease",
        "Ack",
        "Fail",
        "Extend",
        "Cancel",
        "Retry",
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
