"""Webhooks from the Python client: created with a secret, listed, deleted; a dead job reaches a
real local receiver signed with that secret."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from jobqueue import AsyncClient, JobContext, NonRetryableError, WebhookNotFound
from tests.client.conftest import WorkerRunner

Post = tuple[dict[str, str], bytes]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Post]]]:
    posts: list[Post] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(
                (
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(int(self.headers["Content-Length"])),
                )
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", posts
    server.shutdown()
    server.server_close()


async def test_a_webhook_hears_of_a_dead_job_signed_with_its_secret(
    client: AsyncClient, workers: WorkerRunner, queue: str, receiver: tuple[str, list[Post]]
) -> None:
    url, posts = receiver
    made = await client.create_webhook(url, queue=queue, allow_private_network=True)
    assert [w.webhook_id for w in await client.list_webhooks()] == [made.info.webhook_id]

    async def handler(payload: dict[str, Any], ctx: JobContext) -> None:
        raise NonRetryableError("the address bounced")

    workers.start(workers.new(handlers={queue: handler}))
    job = await client.enqueue(queue, {})
    async with asyncio.timeout(20):  # the dispatcher looks every 2 s
        while not posts:
            await asyncio.sleep(0.05)

    headers, body = posts[0]
    signed = hmac.new(
        made.secret.encode(), headers["jobqueue-timestamp"].encode() + b"." + body, hashlib.sha256
    )
    assert headers["jobqueue-signature"] == f"sha256={signed.hexdigest()}"
    event = json.loads(body)
    assert (event["event"], event["job"]["id"]) == ("job.dead", job.job_id)
    assert "the address bounced" in event["job"]["lastError"]

    await client.delete_webhook(made.info.webhook_id)
    with pytest.raises(WebhookNotFound):
        await client.delete_webhook(made.info.webhook_id)
