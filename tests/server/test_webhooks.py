"""Webhooks against a real local HTTP receiver: a dead job is POSTed signed, with the job; a
receiver that is down gets the event once it is back, with the same delivery id; thresholds
alert once when passed and once when back under; two servers deliver each event once; private
endpoints are refused unless allowed; the admin RPCs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.protobuf import duration_pb2
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, start_app, store_config
from jobqueue_server.store import Store
from tests.server.streams import LeaseStream
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

WAIT_S = 15.0


@dataclass
class Receiver:
    """A local HTTP endpoint that records every POST; it can answer 503, or be down."""

    port: int
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    failing: bool = False
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.server = _serve(self)

    def stop(self) -> None:
        """Down: nothing listens on the port any more."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/jobqueue"

    def events(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(body) for headers, body in self.posts if headers["jobqueue-event"] == name]


def _serve(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if receiver.failing:
                self.send_response(503)
            else:
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    found = Receiver(int(port))
    found.start()
    yield found
    if found.server is not None:
        found.stop()


async def _app(redis: Redis, settings: ServerSettings) -> App:
    chosen = settings.model_copy(update={"webhook_interval_seconds": 0.05})
    return await start_app(chosen, Store(redis, store_config(chosen)))


@pytest.fixture
async def hooked(redis: Redis, settings: ServerSettings) -> AsyncIterator[App]:
    running = await _app(redis, settings)
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def stub(hooked: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hooked.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


async def _create(stub: Stub, url: str, **fields: Any) -> svc.CreateWebhookResponse:
    webhook = svc.Webhook(url=url, allow_private_network=True, **fields)
    return await stub.CreateWebhook(svc.CreateWebhookRequest(webhook=webhook))


async def _kill(stub: Stub, queue: str) -> str:
    """Enqueues a job with one attempt and fails it: it ends DEAD."""
    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue=queue, max_attempts=1))).job_id
    stream = await LeaseStream(stub).subscribe(queue, max_in_flight=1)
    (job,) = await stream.wait_jobs(1)
    await stream.fail(job, "smtp: 550 mailbox unavailable")
    await stream.wait_confirmations(1)
    await stream.close()
    return job_id


async def _until(condition: Any, timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_dead_job_is_posted_signed_with_the_job(stub: Stub, receiver: Receiver) -> None:
    created = await _create(stub, receiver.url, queue="emails")
    job_id = await _kill(stub, "emails")
    await _kill(stub, "other")  # not this webhook's queue

    await _until(lambda: receiver.events("job.dead"))
    await asyncio.sleep(0.3)  # passes enough for a wrong second delivery to show
    (headers, body) = receiver.posts[0]
    (event,) = receiver.events("job.dead")
    expected = hmac.new(
        created.secret.encode(), headers["jobqueue-timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["jobqueue-signature"] == f"sha256={expected}"
    assert headers["jobqueue-delivery"] == event["delivery_id"]
    assert event["delivery_id"].startswith(f"{job_id}:dead:")
    assert (event["queue"], event["job"]["id"], event["job"]["state"]) == ("emails", job_id, "JOB_STATE_DEAD")
    assert event["job"]["lastError"] == "smtp: 550 mailbox unavailable"
    assert event["webhook_id"] == created.webhook.id
    assert len(receiver.posts) == 1


@pytest.mark.parametrize("outage", ["down", "503"])
async def test_a_receiver_that_is_down_gets_the_events_when_it_is_back(
    stub: Stub, receiver: Receiver, hooked: App, outage: str
) -> None:
    await _create(stub, receiver.url)
    if outage == "down":
        receiver.stop()
    else:
        receiver.failing = True
    killed = [await _kill(stub, "emails") for _ in range(2)]
    dispatcher = hooked.webhook_dispatcher
    await _until(lambda: dispatcher.failures >= 2)  # refused, then tried again after a backoff
    if outage == "down":
        receiver.start()
    else:
        receiver.failing = False

    await _until(lambda: len(receiver.events("job.dead")) == 2, timeout_s=20)
    assert [e["job"]["id"] for e in receiver.events("job.dead")] == killed  # in order


async def test_thresholds_alert_once_when_passed_and_once_when_back(stub: Stub, receiver: Receiver) -> None:
    await _create(
        stub, receiver.url, queue="q", dead_jobs=2, oldest_job_age=duration_pb2.Duration(seconds=3600)
    )
    first = await _kill(stub, "q")
    second = await _kill(stub, "q")
    await _until(lambda: receiver.events("queue.dead_jobs"))
    (firing,) = receiver.events("queue.dead_jobs")
    assert (firing["status"], firing["dead_jobs"], firing["threshold"]) == ("firing", 2, 2)

    await stub.Retry(svc.RetryRequest(job_id=first))  # one dead job left: under the threshold
    await _until(lambda: len(receiver.events("queue.dead_jobs")) == 2)
    assert [e["status"] for e in receiver.events("queue.dead_jobs")] == ["firing", "resolved"]
    assert receiver.events("queue.oldest_job_age") == []  # the retried job is not an hour old
    assert {e["job"]["id"] for e in receiver.events("job.dead")} == {first, second}


async def test_two_servers_deliver_each_event_once(
    stub: Stub, receiver: Receiver, redis: Redis, settings: ServerSettings
) -> None:
    second = await _app(redis, settings)
    try:
        await _create(stub, receiver.url)
        killed = [await _kill(stub, "emails") for _ in range(5)]
        await _until(lambda: len(receiver.events("job.dead")) == 5)
        await asyncio.sleep(0.3)
    finally:
        await second.stop(grace_s=0)
    assert sorted(e["job"]["id"] for e in receiver.events("job.dead")) == sorted(killed)


async def test_the_admin_rpcs_and_what_they_refuse(stub: Stub, receiver: Receiver) -> None:
    created = await _create(stub, receiver.url, queue="emails")
    listed = (await stub.ListWebhooks(svc.ListWebhooksRequest())).webhooks
    assert [w.id for w in listed] == [created.webhook.id] and listed[0].url == receiver.url

    with pytest.raises(grpc.aio.AioRpcError) as private:
        await stub.CreateWebhook(svc.CreateWebhookRequest(webhook=svc.Webhook(url=receiver.url)))
    assert private.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "webhook.url" in (private.value.details() or "") and "not a public address" in (
        private.value.details() or ""
    )
    for url in ("ftp://example.com/x", "http://user:pw@example.com/", "not a url"):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await _create(stub, url)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, url

    await stub.DeleteWebhook(svc.DeleteWebhookRequest(id=created.webhook.id))
    assert (await stub.ListWebhooks(svc.ListWebhooksRequest())).webhooks == []
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.DeleteWebhook(svc.DeleteWebhookRequest(id=created.webhook.id))
    assert error_reason(gone.value) == "WEBHOOK_NOT_FOUND"
