"""Tokens over their life: issued once, stored as hashes, refused once revoked or expired, and
open streams ended within seconds when that happens (their jobs released)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.auth.tokens import new_token
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App
from jobqueue_server.store.tokens import TokenRecord, TokenStore
from tests.auth.conftest import bearer, file_mode
from tests.auth.test_matrix import _refusal

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

STREAM_END_WITHIN_S = 10.0  # the bound a test waits; the server refreshes tokens every second


async def test_the_bootstrap_admin_token_is_private_and_made_once(
    auth_app: App, admin_token: str, auth_settings: ServerSettings, redis: Redis
) -> None:
    path = auth_settings.data_dir / "admin.token"
    assert file_mode(path) == 0o600
    assert admin_token.startswith("jq_")
    # Neither the bootstrap token nor any other is stored in the clear.
    stored = await redis.hgetall(f"{auth_settings.key_prefix}:tokens")
    secret = admin_token.split("_", 2)[2]
    assert all(secret.encode() not in value for value in stored.values())
    assert len(stored) == 2  # the token and the version field


async def test_a_second_server_on_the_same_store_makes_no_second_admin_token(
    auth_app: App, admin_token: str, auth_settings: ServerSettings, redis: Redis, tmp_path: Any
) -> None:
    from jobqueue_server.runtime.app import start_app, store_config
    from jobqueue_server.store import Store

    other = auth_settings.model_copy(update={"data_dir": tmp_path / "other"})
    second = await start_app(other, Store(redis, store_config(other)))
    try:
        assert not (tmp_path / "other" / "admin.token").exists()
    finally:
        await second.stop(grace_s=0)


async def test_create_list_and_revoke(stub: Stub, admin_token: str) -> None:
    created = await stub.CreateToken(
        svc.CreateTokenRequest(name="ci", role=svc.TOKEN_ROLE_WORKER, queues=["emails", "images.*"]),
        metadata=bearer(admin_token),
    )
    listed = await stub.ListTokens(svc.ListTokensRequest(), metadata=bearer(admin_token))
    assert created.info in listed.tokens
    assert all(created.token not in str(info) for info in listed.tokens)
    await stub.RevokeToken(
        svc.RevokeTokenRequest(token_id=created.info.token_id), metadata=bearer(admin_token)
    )
    listed = await stub.ListTokens(svc.ListTokensRequest(), metadata=bearer(admin_token))
    assert created.info.token_id not in {info.token_id for info in listed.tokens}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RevokeToken(
            svc.RevokeTokenRequest(token_id=created.info.token_id), metadata=bearer(admin_token)
        )
    assert _refusal(refused.value) == ("NOT_FOUND", "TOKEN_NOT_FOUND")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "", "role": svc.TOKEN_ROLE_ADMIN, "queues": ["*"]}, "name"),
        ({"name": "x\n", "role": svc.TOKEN_ROLE_ADMIN, "queues": ["*"]}, "name"),
        ({"name": "x", "queues": ["*"]}, "role"),
        ({"name": "x", "role": svc.TOKEN_ROLE_ADMIN}, "queues"),
        ({"name": "x", "role": svc.TOKEN_ROLE_ADMIN, "queues": ["a{b}"]}, "queues"),
        ({"name": "x", "role": svc.TOKEN_ROLE_ADMIN, "queues": ["*"] * 65}, "queues"),
    ],
)
async def test_a_bad_token_request_names_the_field(
    stub: Stub, admin_token: str, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CreateToken(svc.CreateTokenRequest(**fields), metadata=bearer(admin_token))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith(f"{field}:")


async def test_malformed_authorization_is_refused(stub: Stub, admin_token: str) -> None:
    for value in ("Basic abc", admin_token, f"Bearer {admin_token}x", "Bearer jq_zz_zz", "Bearer "):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListTokens(svc.ListTokensRequest(), metadata=(("authorization", value),))
        assert _refusal(refused.value) == ("UNAUTHENTICATED", "TOKEN_INVALID"), value


async def _leased_stream(stub: Stub, token: str, queue: str) -> tuple[Any, str]:
    """A Lease stream holding one job of `queue`: (the call, the job's id)."""
    call = stub.Lease(metadata=bearer(token))
    await call.write(svc.LeaseRequest(subscribe=svc.Subscribe(queues=[queue], max_in_flight=1)))
    await call.read()
    while True:
        response: Any = await call.read()
        if response.jobs:
            return call, response.jobs[0].job.id


async def _ended_with(call: Any) -> tuple[str, str]:
    async with asyncio.timeout(STREAM_END_WITHIN_S):
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            while await call.read() is not grpc.aio.EOF:
                pass
    return _refusal(ended.value)


async def _state(stub: Stub, admin: str, job_id: str) -> int:
    response = await stub.GetStatus(svc.GetStatusRequest(job_id=job_id), metadata=bearer(admin))
    return response.job.state


async def test_revoking_a_token_ends_its_open_stream_and_releases_its_job(
    stub: Stub, admin_token: str, make_token: Callable[..., Any]
) -> None:
    worker = await make_token(svc.TOKEN_ROLE_WORKER, ["mail"])
    await stub.Enqueue(svc.EnqueueRequest(queue="mail"), metadata=bearer(admin_token))
    call, job_id = await _leased_stream(stub, worker, "mail")
    listed = await stub.ListTokens(svc.ListTokensRequest(), metadata=bearer(admin_token))
    (info,) = [t for t in listed.tokens if t.role == svc.TOKEN_ROLE_WORKER]
    await stub.RevokeToken(svc.RevokeTokenRequest(token_id=info.token_id), metadata=bearer(admin_token))
    assert await _ended_with(call) == ("UNAUTHENTICATED", "TOKEN_INVALID")
    assert await _state(stub, admin_token, job_id) == job_pb2.JOB_STATE_QUEUED


async def test_an_expiring_token_ends_its_open_stream(
    stub: Stub, admin_token: str, redis: Redis, auth_settings: ServerSettings, auth_app: App
) -> None:
    text, token_id, digest = new_token()
    now_ms = auth_app.store.clock.now_ms()
    store = TokenStore(redis, auth_settings.key_prefix, 2.0)
    await store.add(TokenRecord(token_id, "short", "worker", ("*",), now_ms, now_ms + 1500, digest))
    await stub.Enqueue(svc.EnqueueRequest(queue="short"), metadata=bearer(admin_token))
    call, job_id = await _leased_stream(stub, text, "short")
    assert await _ended_with(call) == ("UNAUTHENTICATED", "TOKEN_EXPIRED")
    assert await _state(stub, admin_token, job_id) == job_pb2.JOB_STATE_QUEUED


async def test_an_enqueue_stream_request_outside_the_scope_is_refused_alone(
    stub: Stub, admin_token: str, make_token: Callable[..., Any]
) -> None:
    producer = await make_token(svc.TOKEN_ROLE_PRODUCER, ["ok*"])
    call = stub.EnqueueStream(metadata=bearer(producer))
    for sequence, queue in enumerate(("ok1", "nope", "ok2"), start=1):
        await call.write(
            svc.EnqueueStreamRequest(sequence=sequence, requests=[svc.EnqueueRequest(queue=queue)])
        )
    answers: list[Any] = [await call.read() for _ in range(3)]
    await call.done_writing()
    assert [a.sequence for a in answers] == [1, 2, 3]
    assert [len(a.responses) for a in answers] == [1, 0, 1]
    assert answers[1].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]
    assert "requests[0].queue" in answers[1].error.message
    stats = await stub.Stats(svc.StatsRequest(queue="nope"), metadata=bearer(admin_token))
    assert stats.queues[0].queued == 0


async def test_a_later_lease_message_outside_the_scope_ends_the_stream_unapplied(
    stub: Stub, admin_token: str, make_token: Callable[..., Any]
) -> None:
    worker = await make_token(svc.TOKEN_ROLE_WORKER, ["ok*"])
    call = stub.Lease(metadata=bearer(worker))
    await call.write(svc.LeaseRequest(subscribe=svc.Subscribe(queues=["ok1"], max_in_flight=1)))
    await call.read()
    foreign = svc.AckRequest(job_id="nope:01J00000000000000000000000", lease_token="x")
    await call.write(svc.LeaseRequest(acks=[foreign]))
    assert await _ended_with(call) == ("PERMISSION_DENIED", "QUEUE_NOT_ALLOWED")


async def test_stats_of_every_queue_shows_a_scoped_admin_only_its_queues(
    stub: Stub, admin_token: str, make_token: Callable[..., Any]
) -> None:
    for queue in ("team-a.mail", "team-b.mail"):
        await stub.Enqueue(svc.EnqueueRequest(queue=queue), metadata=bearer(admin_token))
    scoped = await make_token(svc.TOKEN_ROLE_ADMIN, ["team-a.*"])
    stats = await stub.Stats(svc.StatsRequest(), metadata=bearer(scoped))
    assert [q.queue for q in stats.queues] == ["team-a.mail"]


async def test_health_and_reflection_stay_open(channel: grpc.aio.Channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)
    response = await health.Check(health_pb2.HealthCheckRequest())
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_the_python_clients_and_worker_send_their_token(
    auth_app: App,
    admin_token: str,
    make_token: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from jobqueue import AsyncClient, Client, PermissionDenied, Unauthenticated, Worker

    target = f"127.0.0.1:{auth_app.port}"
    producer = await make_token(svc.TOKEN_ROLE_PRODUCER, ["mail"])
    async with AsyncClient(target, token=producer) as client:  # batched on the EnqueueStream
        job_ids = await asyncio.gather(*(client.enqueue("mail", {"n": n}) for n in range(3)))
        with pytest.raises(PermissionDenied) as denied:
            await client.enqueue("other", {})
        assert denied.value.reason == "QUEUE_NOT_ALLOWED"
    async with AsyncClient(target, batching=None) as client:
        with pytest.raises(Unauthenticated):
            await client.enqueue("mail", {})

    secret = tmp_path / "admin.token"
    secret.write_text(admin_token + "\n")
    monkeypatch.setenv("JOBQ_TOKEN_FILE", str(secret))
    with Client(target) as blocking:  # the token from a file the environment names
        assert (await asyncio.to_thread(blocking.stats, "mail"))[0].queued == 3
    monkeypatch.setenv("JOBQ_TOKEN", producer)  # JOBQ_TOKEN wins over the file
    with Client(target) as blocking, pytest.raises(PermissionDenied):
        await asyncio.to_thread(blocking.stats, "mail")

    handled: list[str] = []
    worker_token = await make_token(svc.TOKEN_ROLE_WORKER, ["mail"])
    worker = Worker(
        target, ["mail"], token=worker_token, handlers={"mail": lambda p, ctx: handled.append(ctx.job_id)}
    )
    running = asyncio.create_task(worker.run())
    async with asyncio.timeout(STREAM_END_WITHIN_S):
        while len(handled) < 3:
            await asyncio.sleep(0.01)
    worker.stop()
    await running
    assert sorted(handled) == sorted(result.job_id for result in job_ids)

    # Credentials the server refuses would be refused again: the worker stops and says why.
    with pytest.raises(PermissionDenied) as refused:
        await Worker(target, ["mail"], token=producer, handlers={"mail": lambda p, ctx: None}).run()
    assert refused.value.reason == "ROLE_NOT_ALLOWED"


async def test_a_revoked_token_is_refused_at_once_by_the_server_that_revoked_it(
    stub: Stub, admin_token: str, make_token: Callable[..., Any]
) -> None:
    producer = await make_token(svc.TOKEN_ROLE_PRODUCER, ["*"])
    await stub.Enqueue(svc.EnqueueRequest(queue="q"), metadata=bearer(producer))  # known to the server now
    listed = await stub.ListTokens(svc.ListTokensRequest(), metadata=bearer(admin_token))
    (info,) = [t for t in listed.tokens if t.role == svc.TOKEN_ROLE_PRODUCER]
    await stub.RevokeToken(svc.RevokeTokenRequest(token_id=info.token_id), metadata=bearer(admin_token))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Enqueue(svc.EnqueueRequest(queue="q"), metadata=bearer(producer))
    assert _refusal(refused.value) == ("UNAUTHENTICATED", "TOKEN_INVALID")
