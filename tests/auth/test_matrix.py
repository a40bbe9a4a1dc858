"""Every RPC, by every role, on a queue in and out of the token's scope, with a valid, expired,
revoked and missing token, against an oracle written from the policy's words (docs/security.md): a refusal
has the oracle's code and reason and changes nothing; an allowed call is not refused for auth."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.auth.tokens import new_token
from jobqueue_server.config import ServerSettings
from jobqueue_server.store.tokens import TokenRecord, TokenStore
from tests.auth.conftest import bearer

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

INSIDE, OUTSIDE = "inside-q", "outside-q"
PATTERNS = ["inside*"]
ULID = "01J00000000000000000000000"

# The policy in words: producers enqueue and read their jobs; workers lease and settle; admins
# do everything, and only an admin for every queue manages tokens, schedules and webhooks.
PRODUCER_METHODS = {"Enqueue", "EnqueueBatch", "EnqueueStream", "GetStatus", "WatchJob"}
WORKER_METHODS = {"Lease", "Ack", "Fail", "Extend"}
TOKEN_METHODS = {"CreateToken", "ListTokens", "RevokeToken"}
SCHEDULE_METHODS = {
    "CreateSchedule",
    "GetSchedule",
    "ListSchedules",
    "UpdateSchedule",
    "DeleteSchedule",
    "PauseSchedule",
    "ResumeSchedule",
}
WEBHOOK_METHODS = {"CreateWebhook", "ListWebhooks", "DeleteWebhook"}
# Only an admin for every queue manages tokens, schedules and webhooks.
UNRESTRICTED_METHODS = TOKEN_METHODS | SCHEDULE_METHODS | WEBHOOK_METHODS

Call = Callable[["Stub", str, Any], Awaitable[None]]


class AnsweredWithError(Exception):
    """An EnqueueStream request answered with an error (the stream itself went on)."""

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


async def _enqueue_stream(stub: Stub, queue: str, metadata: Any) -> None:
    call = stub.EnqueueStream(metadata=metadata)
    await call.write(svc.EnqueueStreamRequest(sequence=1, requests=[svc.EnqueueRequest(queue=queue)]))
    await call.done_writing()
    while (answer := await call.read()) is not grpc.aio.EOF:
        assert isinstance(answer, svc.EnqueueStreamResponse)
        if answer.HasField("error"):
            raise AnsweredWithError(answer.error)


async def _lease(stub: Stub, queue: str, metadata: Any) -> None:
    call = stub.Lease(metadata=metadata)
    await call.write(svc.LeaseRequest(subscribe=svc.Subscribe(queues=[queue], max_in_flight=1)))
    await call.read()  # the subscription's answer, or the refusal
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:  # until the server closed the session
        pass


async def _watch(stub: Stub, queue: str, metadata: Any) -> None:
    call = stub.WatchJob(svc.WatchJobRequest(job_id=f"{queue}:{ULID}"), metadata=metadata)
    async for _ in call:  # the job does not exist: NOT_FOUND, or the refusal
        pass


def _unary(name: str, make: Callable[[str], Any]) -> Call:
    async def call(stub: Stub, queue: str, metadata: Any) -> None:
        await getattr(stub, name)(make(queue), metadata=metadata)

    return call


def _schedule(queue: str) -> svc.Schedule:
    # Yearly: no tick comes while the matrix runs, so a refused call's keyspace stays still.
    return svc.Schedule(name=f"every-{queue}", cron="0 0 1 1 *", template=svc.JobTemplate(queue=queue))


CALLS: dict[str, Call] = {
    "Enqueue": _unary("Enqueue", lambda q: svc.EnqueueRequest(queue=q)),
    "EnqueueBatch": _unary(
        "EnqueueBatch", lambda q: svc.EnqueueBatchRequest(requests=[svc.EnqueueRequest(queue=q)])
    ),
    "EnqueueStream": _enqueue_stream,
    "GetStatus": _unary("GetStatus", lambda q: svc.GetStatusRequest(job_id=f"{q}:{ULID}")),
    "WatchJob": _watch,
    "Stats": _unary("Stats", lambda q: svc.StatsRequest(queue=q)),
    "ListJobs": _unary("ListJobs", lambda q: svc.ListJobsRequest(queue=q, state=job_pb2.JOB_STATE_QUEUED)),
    "Lease": _lease,
    "Ack": _unary("Ack", lambda q: svc.AckRequest(job_id=f"{q}:{ULID}", lease_token="x")),
    "Fail": _unary("Fail", lambda q: svc.FailRequest(job_id=f"{q}:{ULID}", lease_token="x")),
    "Extend": _unary("Extend", lambda q: svc.ExtendRequest(job_id=f"{q}:{ULID}", lease_token="x")),
    "Cancel": _unary("Cancel", lambda q: svc.CancelRequest(job_id=f"{q}:{ULID}")),
    "Retry": _unary("Retry", lambda q: svc.RetryRequest(job_id=f"{q}:{ULID}")),
    "PauseQueue": _unary("PauseQueue", lambda q: svc.PauseQueueRequest(queue=q)),
    "ResumeQueue": _unary("ResumeQueue", lambda q: svc.ResumeQueueRequest(queue=q)),
    "CreateQueue": _unary("CreateQueue", lambda q: svc.CreateQueueRequest(queue=q, partitions=2)),
    "SetQueueLimits": _unary(
        "SetQueueLimits",
        lambda q: svc.SetQueueLimitsRequest(queue=q, limits=job_pb2.QueueLimits(max_active=5)),
    ),
    "CreateToken": _unary(
        "CreateToken", lambda q: svc.CreateTokenRequest(name="made", role=svc.TOKEN_ROLE_PRODUCER, queues=[q])
    ),
    "ListTokens": _unary("ListTokens", lambda q: svc.ListTokensRequest()),
    "RevokeToken": _unary("RevokeToken", lambda q: svc.RevokeTokenRequest(token_id="0" * 16)),
    "CreateSchedule": _unary("CreateSchedule", lambda q: svc.CreateScheduleRequest(schedule=_schedule(q))),
    "GetSchedule": _unary("GetSchedule", lambda q: svc.GetScheduleRequest(name=f"every-{q}")),
    "ListSchedules": _unary("ListSchedules", lambda q: svc.ListSchedulesRequest()),
    "UpdateSchedule": _unary("UpdateSchedule", lambda q: svc.UpdateScheduleRequest(schedule=_schedule(q))),
    "DeleteSchedule": _unary("DeleteSchedule", lambda q: svc.DeleteScheduleRequest(name=f"every-{q}")),
    "PauseSchedule": _unary("PauseSchedule", lambda q: svc.PauseScheduleRequest(name=f"every-{q}")),
    "ResumeSchedule": _unary("ResumeSchedule", lambda q: svc.ResumeScheduleRequest(name=f"every-{q}")),
    "CreateWebhook": _unary(
        "CreateWebhook",
        lambda q: svc.CreateWebhookRequest(
            webhook=svc.Webhook(url="http://127.0.0.1:9/hook", queue=q, allow_private_network=True)
        ),
    ),
    "ListWebhooks": _unary("ListWebhooks", lambda q: svc.ListWebhooksRequest()),
    "DeleteWebhook": _unary("DeleteWebhook", lambda q: svc.DeleteWebhookRequest(id=ULID)),
}
ROLES = {"producer": svc.TOKEN_ROLE_PRODUCER, "worker": svc.TOKEN_ROLE_WORKER, "admin": svc.TOKEN_ROLE_ADMIN}
STATES = ("valid", "expired", "revoked", "missing")
# What an allowed call must never end with: an auth refusal, or a failure of the server itself.
AUTH_OR_CRASH = ("UNAUTHENTICATED", "PERMISSION_DENIED", "UNKNOWN", "INTERNAL")


@pytest.fixture
def auth_settings(auth_settings: ServerSettings) -> ServerSettings:
    # The webhook passes write delivery cursors on their own schedule, and the matrix compares
    # the keyspace around each refused call: no pass but the first, at start.
    return auth_settings.model_copy(update={"webhook_interval_seconds": 3600.0})


def oracle(method: str, role: str, unrestricted: bool, queue: str, state: str) -> tuple[str, str] | None:
    """(code, reason) of the refusal the policy demands, or None when the call is allowed."""
    if state == "missing":
        return "UNAUTHENTICATED", "TOKEN_MISSING"
    if state == "expired":
        return "UNAUTHENTICATED", "TOKEN_EXPIRED"
    if state == "revoked":
        return "UNAUTHENTICATED", "TOKEN_INVALID"
    allowed = (
        (role == "producer" and method in PRODUCER_METHODS)
        or (role == "worker" and method in WORKER_METHODS)
        or (role == "admin" and (method not in UNRESTRICTED_METHODS or unrestricted))
    )
    if not allowed:
        return "PERMISSION_DENIED", "ROLE_NOT_ALLOWED"
    if method not in UNRESTRICTED_METHODS and not unrestricted and queue == OUTSIDE:
        return "PERMISSION_DENIED", "QUEUE_NOT_ALLOWED"
    return None


_CODES = {code.value[0]: code.value for code in grpc.StatusCode}


def test_the_matrix_covers_every_method_of_the_service() -> None:
    assert set(CALLS) == {m.name for m in svc.DESCRIPTOR.services_by_name["JobQueueService"].methods}


async def _keyspace(redis: Redis, prefix: str) -> str:
    digest = hashlib.sha256()
    keys = sorted([key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)])
    for key in keys:
        digest.update(key + b"=" + (await redis.dump(key) or b""))
    return digest.hexdigest()


def _refusal(error: grpc.aio.AioRpcError) -> tuple[str, str]:
    return error.code().name, _reason(rpc_status.from_call(error))


def _reason(status: status_pb2.Status | None) -> str:
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


async def _tokens(
    stub: Stub, admin: str, redis: Redis, settings: ServerSettings
) -> dict[tuple[str, bool, str], str | None]:
    """A token per (role, unrestricted, state); None for a missing one."""
    tokens: dict[tuple[str, bool, str], str | None] = {}
    store = TokenStore(redis, settings.key_prefix, 2.0)
    for (role, value), unrestricted in itertools.product(ROLES.items(), (False, True)):
        patterns = ["*"] if unrestricted else PATTERNS
        create = svc.CreateTokenRequest(name=f"{role}", role=value, queues=patterns)
        tokens[(role, unrestricted, "valid")] = (await stub.CreateToken(create, metadata=bearer(admin))).token
        revoked = await stub.CreateToken(create, metadata=bearer(admin))
        await stub.RevokeToken(svc.RevokeTokenRequest(token_id=revoked.info.token_id), metadata=bearer(admin))
        tokens[(role, unrestricted, "revoked")] = revoked.token
        text, token_id, digest = new_token()
        await store.add(TokenRecord(token_id, role, role, tuple(patterns), 1_000, 2_000, digest))
        tokens[(role, unrestricted, "expired")] = text
        tokens[(role, unrestricted, "missing")] = None
    return tokens


@pytest.mark.timeout(300)
async def test_every_call_agrees_with_the_oracle(
    stub: Stub, admin_token: str, redis: Redis, auth_settings: ServerSettings
) -> None:
    tokens = await _tokens(stub, admin_token, redis, auth_settings)
    disagreements: list[str] = []
    cases = 0
    for (role, unrestricted, state), token in tokens.items():
        for method, queue in itertools.product(CALLS, (INSIDE, OUTSIDE)):
            cases += 1
            expected = oracle(method, role, unrestricted, queue, state)
            metadata = bearer(token) if token is not None else None
            before = await _keyspace(redis, auth_settings.key_prefix) if expected else ""
            try:
                await CALLS[method](stub, queue, metadata)
                got: tuple[str, str] | None = None
            except grpc.aio.AioRpcError as error:
                got = _refusal(error)
            except AnsweredWithError as answered:
                got = grpc.StatusCode(_CODES[answered.status.code]).name, _reason(answered.status)
            case = f"{method} as {role}{'*' if unrestricted else ''} ({state}) on {queue}"
            if expected is not None:
                if got != expected:
                    disagreements.append(f"{case}: expected {expected}, got {got}")
                elif await _keyspace(redis, auth_settings.key_prefix) != before:
                    disagreements.append(f"{case}: refused but changed the keyspace")
            elif got is not None and got[0] in (
                "UNAUTHENTICATED",
                "PERMISSION_DENIED",
                "UNKNOWN",
                "INTERNAL",
            ):
                disagreements.append(f"{case}: allowed by the policy, failed with {got}")
    assert cases == len(ROLES) * 2 * len(STATES) * len(CALLS) * 2
    assert disagreements == []
