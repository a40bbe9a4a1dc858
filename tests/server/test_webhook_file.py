"""Webhooks declared in a file (--webhooks-file): stored at start with their own secret, kept as
the file says across restarts, refused clearly when wrong; deliveries are signed with the file's
secret."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, SettingsError, start_app, store_config
from jobqueue_server.store import Store
from tests.server.test_webhooks import Receiver, _kill, _until
from tests.server.test_webhooks import receiver as receiver

SECRET = "s3cret-of-the-ops-team"


def ops_file(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "webhooks.toml"
    path.write_text(
        f"""
[[webhook]]
name = "ops"
url = "{url}"
queue = "emails"
dead_jobs = 5
oldest_job_age_seconds = 300
allow_private_network = true
secret = "{SECRET}"
{extra}
"""
    )
    return path


async def start(redis: Redis, settings: ServerSettings, path: Path) -> App:
    chosen = settings.model_copy(update={"webhooks_file": path, "webhook_interval_seconds": 0.05})
    return await start_app(chosen, Store(redis, store_config(chosen)))


@pytest.fixture
async def running(redis: Redis, settings: ServerSettings) -> AsyncIterator[list[App]]:
    apps: list[App] = []
    yield apps
    for app in apps:
        await app.stop(grace_s=0)


async def listed(app: App) -> dict[str, svc.Webhook]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        reply = await svc_grpc.JobQueueServiceStub(channel).ListWebhooks(svc.ListWebhooksRequest())
    return {webhook.id: webhook for webhook in reply.webhooks}


async def test_the_files_webhooks_are_stored_and_deliver_signed_with_its_secret(
    redis: Redis, settings: ServerSettings, tmp_path: Path, receiver: Receiver, running: list[App]
) -> None:
    app = await start(redis, settings, ops_file(tmp_path, receiver.url))
    running.append(app)

    [ops] = (await listed(app)).values()
    assert (ops.id, ops.url, ops.queue, ops.dead_jobs) == ("file:ops", receiver.url, "emails", 5)
    assert ops.oldest_job_age.seconds == 300
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        await _kill(svc_grpc.JobQueueServiceStub(channel), "emails")
    await _until(lambda: receiver.events("job.dead"))
    headers, body = receiver.posts[0]
    expected = hmac.new(SECRET.encode(), headers["jobqueue-timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["jobqueue-signature"] == f"sha256={expected.hexdigest()}"


async def test_a_restart_applies_the_file_as_it_is_now_and_leaves_rpc_webhooks_alone(
    redis: Redis,
    settings: ServerSettings,
    tmp_path: Path,
    running: list[App],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAGER_SECRET", "another-secret-of-16+")
    pager = (
        '[[webhook]]\nname = "pager"\nurl = "http://127.0.0.1:9/p"\n'
        'allow_private_network = true\nsecret_env = "PAGER_SECRET"\n'
    )
    path = ops_file(tmp_path, "http://127.0.0.1:9/a", pager)
    first = await start(redis, settings, path)
    before = await listed(first)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        made = await svc_grpc.JobQueueServiceStub(channel).CreateWebhook(
            svc.CreateWebhookRequest(
                webhook=svc.Webhook(url="http://127.0.0.1:9/rpc", allow_private_network=True)
            )
        )
    await first.stop(grace_s=0)

    ops_file(tmp_path, "http://127.0.0.1:9/b")  # pager removed, ops moved
    second = await start(redis, settings, path)
    running.append(second)
    after = await listed(second)

    assert set(before) == {"file:ops", "file:pager"}
    assert set(after) == {"file:ops", made.webhook.id}
    assert after["file:ops"].url == "http://127.0.0.1:9/b"
    assert after["file:ops"].create_time == before["file:ops"].create_time


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ('colour = "red"', "unknown key 'colour'"),
        ('secret_env = "X"', "exactly one of secret and secret_env"),
        ("dead_jobs = -1", "webhook.dead_jobs"),
    ],
)
async def test_a_wrong_file_stops_the_start_naming_the_entry_and_key(
    redis: Redis, settings: ServerSettings, tmp_path: Path, extra: str, names: str
) -> None:
    path = ops_file(tmp_path, "http://127.0.0.1:9/a")
    path.write_text(path.read_text().replace("dead_jobs = 5", extra))
    with pytest.raises(SettingsError, match=names):
        await start(redis, settings, path)


async def test_a_private_url_needs_allow_private_network(
    redis: Redis, settings: ServerSettings, tmp_path: Path
) -> None:
    path = ops_file(tmp_path, "http://127.0.0.1:9/a")
    path.write_text(path.read_text().replace("allow_private_network = true", ""))
    with pytest.raises(SettingsError, match="allow_private_network"):
        await start(redis, settings, path)
