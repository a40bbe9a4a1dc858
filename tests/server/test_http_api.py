"""The service over HTTP/JSON (--http-port): the tutorial's requests with a real HTTP client,
transcoded from the proto's google.api.http rules; errors as google.rpc.Status JSON with the
matching HTTP status; the same tokens as gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.config import ServerSettings
from jobqueue_server.http_api.gateway import routes
from jobqueue_server.runtime.app import App, admin_token_path, start_app, store_config
from jobqueue_server.store import Store


@pytest.fixture
async def served(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    chosen = settings.model_copy(update={"http_port": 0})
    running = await start_app(chosen, Store(redis, store_config(chosen)))
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def http(served: App) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{served.http_port}") as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any]:
    async with http.request(method, path, json=body, headers=headers) as response:
        return response.status, await response.json()


def test_the_mapping_covers_what_the_docs_promise() -> None:
    table = {(route.verb, route.template): route.method.name for route in routes()}
    assert table == {
        ("POST", "/v1/queues/{queue}/jobs"): "Enqueue",
        ("POST", "/v1/queues/{queue}/jobs:batch"): "EnqueueBatch",
        ("GET", "/v1/jobs/{job_id}"): "GetStatus",
        ("GET", "/v1/stats"): "Stats",
        ("GET", "/v1/queues/{queue}/jobs"): "ListJobs",
        ("POST", "/v1/jobs/{job_id}:cancel"): "Cancel",
        ("POST", "/v1/jobs/{job_id}:retry"): "Retry",
        ("POST", "/v1/queues/{queue}:pause"): "PauseQueue",
        ("POST", "/v1/queues/{queue}:resume"): "ResumeQueue",
        ("POST", "/v1/queues"): "CreateQueue",
        ("GET", "/v1/schedules"): "ListSchedules",
    }


async def test_the_tutorials_requests(http: aiohttp.ClientSession) -> None:
    # POST /emails/send and POST /images/process, in the tutorial; here a queue per job type.
    status, email = await call(
        http, "POST", "/v1/queues/emails/jobs", {"payload": {"to": "user@example.com", "subject": "Welcome!"}}
    )
    assert status == 200 and email["jobId"].startswith("emails:")
    status, batch = await call(
        http,
        "POST",
        "/v1/queues/images/jobs:batch",
        {"requests": [{"payload": {"imageUrl": f"https://example.com/{n}.png"}} for n in range(3)]},
    )
    assert status == 200 and [r["jobId"].split(":")[0] for r in batch["responses"]] == ["images"] * 3

    status, job = await call(http, "GET", f"/v1/jobs/{email['jobId']}")  # GET /jobs/:id
    assert status == 200 and (job["job"]["state"], job["job"]["payload"]["to"]) == (
        "JOB_STATE_QUEUED",
        "user@example.com",
    )
    status, stats = await call(http, "GET", "/v1/stats")  # GET /stats
    assert status == 200 and {q["queue"]: q["queued"] for q in stats["queues"]} == {
        "emails": "1",
        "images": "3",
    }
    status, listed = await call(http, "GET", "/v1/queues/images/jobs?state=JOB_STATE_QUEUED&pageSize=2")
    assert status == 200 and len(listed["jobs"]) == 2 and listed["totalSize"] == "3"  # int64: a JSON string

    status, _ = await call(http, "POST", f"/v1/jobs/{email['jobId']}:cancel")
    assert status == 200
    status, job = await call(http, "GET", f"/v1/jobs/{email['jobId']}")
    assert job["job"]["state"] == "JOB_STATE_CANCELLED"
    status, _ = await call(http, "POST", f"/v1/jobs/{email['jobId']}:retry")
    assert status == 200
    status, paused = await call(http, "POST", "/v1/queues/images:pause")
    assert status == 200 and paused["changed"] is True


async def test_list_filters_in_the_query(http: aiohttp.ClientSession) -> None:
    for customer in ("acme", "globex", "acme"):
        body = {"payload": {"to": "a@example.com"}, "metadata": {"customer": customer}}
        assert (await call(http, "POST", "/v1/queues/emails/jobs", body))[0] == 200
    path = "/v1/queues/emails/jobs?state=JOB_STATE_QUEUED&metadata.customer=acme"

    status, listed = await call(http, "GET", path)
    _, since = await call(http, "GET", f"{path}&createdAfter=2000-01-01T00:00:00Z")
    _, before = await call(http, "GET", f"{path}&createdBefore=2000-01-01T00:00:00Z")
    bad, refused = await call(http, "GET", "/v1/queues/emails/jobs?state=JOB_STATE_QUEUED&queue.x=1")

    assert status == 200 and [job["metadata"]["customer"] for job in listed["jobs"]] == ["acme", "acme"]
    assert len(since["jobs"]) == 2 and "jobs" not in before
    assert bad == 400 and "queue.x" in refused["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "http_status", "reason"),
    [
        ("POST", "/v1/queues/bad%20queue/jobs", {}, 400, "INVALID_ARGUMENT"),
        ("GET", "/v1/jobs/emails:01ARZ3NDEKTSV4RRFFQ69G5FAV", None, 404, "JOB_NOT_FOUND"),
        ("POST", "/v1/queues/emails/jobs", {"priority": "PRIORITY_URGENT"}, 400, None),
        ("POST", "/v1/queues/emails/jobs", {"nope": 1}, 400, None),
        ("GET", "/v1/nothing/here", None, 404, None),
        ("DELETE", "/v1/stats", None, 405, None),
    ],
)
async def test_errors_are_google_rpc_status_json(
    http: aiohttp.ClientSession, method: str, path: str, body: Any, http_status: int, reason: str | None
) -> None:
    status, error = await call(http, method, path, body)
    assert status == http_status
    assert set(error) >= {"code", "message"}
    if reason is not None:
        assert error["details"][0]["reason"] == reason
    if reason == "INVALID_ARGUMENT":
        assert error["details"][1]["fieldViolations"][0]["field"] == "queue"


async def test_the_same_tokens_as_grpc(redis: Redis, settings: ServerSettings) -> None:
    chosen = settings.model_copy(update={"http_port": 0, "auth": True})
    app = await start_app(chosen, Store(redis, store_config(chosen)))
    try:
        admin = admin_token_path(chosen).read_text().strip()
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{app.http_port}") as http:
            status, refused = await call(http, "GET", "/v1/stats")
            assert (status, refused["details"][0]["reason"]) == (401, "TOKEN_MISSING")
            status, _ = await call(http, "GET", "/v1/stats", Authorization=f"Bearer {admin}")
            assert status == 200
    finally:
        await app.stop(grace_s=0)


def test_leasing_stays_on_grpc() -> None:
    mapped = {route.method.name for route in routes()}
    assert not mapped & {"Lease", "EnqueueStream", "WatchJob", "Ack", "Fail", "Extend"}
    assert svc.DESCRIPTOR.services_by_name["JobQueueService"].methods_by_name["Lease"].client_streaming
