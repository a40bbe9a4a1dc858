"""The producer conformance scenarios (README.md, "Producer conformance"), run against every
language's conformance producer.

Each test has a Valkey and a server of its own, so it can change Valkey's configuration to
provoke the store's errors. Valkey fsyncs every write (`appendfsync always`): a fsynced
enqueue is then confirmed at once, with no race against the server's short fsync timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, connect_redis, start_app, store_config
from jobqueue_server.runtime.valkey import EmbeddedValkey
from jobqueue_server.store import Store
from tests.client.conftest import stop_app
from tests.conformance.producers import PRODUCERS, ProducerProcess
from tests.conformance.workers import WorkerUnavailable, must_run_all
from tests.server.streams import LeaseStream
from tests.server.test_durability import waitaof_calls

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

REDIS_TIMEOUT_S = 0.5
FSYNC_TIMEOUT_S = 0.3
# Longer than the server's Redis timeout, so a paused write times out in the server.
PAUSE_MS = 1500
UNKNOWN_JOB = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"
# Each reason a producer can provoke, with its status code ...
CODES = {
    "INVALID_ARGUMENT": "INVALID_ARGUMENT",
    "JOB_NOT_FOUND": "NOT_FOUND",
    "WRONG_STATE": "FAILED_PRECONDITION",
    "DURABILITY_UNAVAILABLE": "FAILED_PRECONDITION",
    "FSYNC_NOT_CONFIRMED": "UNAVAILABLE",
    "STORE_UNAVAILABLE": "UNAVAILABLE",
    "STORE_FULL": "RESOURCE_EXHAUSTED",
}
# ... and the typed error each library raises for it (README.md: `type`).
TYPE_NAMES = {
    "python": {
        "INVALID_ARGUMENT": "InvalidArgument",
        "JOB_NOT_FOUND": "NotFound",
        "WRONG_STATE": "WrongState",
        "DURABILITY_UNAVAILABLE": "DurabilityUnavailable",
        "FSYNC_NOT_CONFIRMED": "FsyncNotConfirmed",
        "STORE_UNAVAILABLE": "StoreUnavailable",
        "STORE_FULL": "StoreFull",
    },
    "node": {
        "INVALID_ARGUMENT": "InvalidArgumentError",
        "JOB_NOT_FOUND": "NotFoundError",
        "WRONG_STATE": "WrongStateError",
        "DURABILITY_UNAVAILABLE": "DurabilityUnavailableError",
        "FSYNC_NOT_CONFIRMED": "FsyncNotConfirmedError",
        "STORE_UNAVAILABLE": "StoreUnavailableError",
        "STORE_FULL": "StoreFullError",
    },
    "go": {
        "INVALID_ARGUMENT": "ErrInvalidArgument",
        "JOB_NOT_FOUND": "ErrNotFound",
        "WRONG_STATE": "ErrWrongState",
        "DURABILITY_UNAVAILABLE": "ErrDurabilityUnavailable",
        "FSYNC_NOT_CONFIRMED": "ErrFsyncNotConfirmed",
        "STORE_UNAVAILABLE": "ErrStoreUnavailable",
        "STORE_FULL": "ErrStoreFull",
    },
}
PAYLOAD: dict[str, Any] = {
    "nested": {"list": [1, 2.5, "x", None, True, {}], "deep": {"deeper": {"deepest": "yes"}}},
    "unicode": "héllo ✓ 日本語 🚀",
    "float": 0.1,
    "negative": -42,
    "largest_exact_integer": 2**53,
    "empty_string": "",
    "empty_list": [],
    "empty_object": {},
}
METADATA = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "ünï"}
FSYNCED = {"durability": "fsynced"}


class Producer:
    """A conformance producer seen from the test. Calls run in a thread: the server under test
    shares this event loop, and a blocking read on it would stall the server."""

    def __init__(self, language: str, process: ProducerProcess) -> None:
        self.language = language
        self.process = process

    async def ok(self, op: str, **arguments: Any) -> Any:
        answer = await asyncio.to_thread(self.process.call, op, **arguments)
        assert "ok" in answer, f"{op} {arguments}: {answer}"
        return answer["ok"]

    async def error(self, op: str, **arguments: Any) -> dict[str, str]:
        answer = await asyncio.to_thread(self.process.call, op, **arguments)
        assert "error" in answer, f"{op} {arguments} should have failed: {answer}"
        return {key: answer["error"][key] for key in ("type", "reason", "code", "field")}

    def expected(self, reason: str, field: str = "") -> dict[str, str]:
        """The error this language's library must report for `reason`."""
        return {
            "type": TYPE_NAMES[self.language][reason],
            "reason": reason,
            "code": CODES[reason],
            "field": field,
        }


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=sorted(PRODUCERS))
def producer_command(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[str]]:
    """The language and the command that starts its conformance producer (built once)."""
    language: str = request.param
    try:
        return language, PRODUCERS[language](tmp_path_factory.mktemp(f"build-producer-{language}"))
    except WorkerUnavailable as missing:
        if must_run_all():
            raise
        pytest.skip(f"{language} producer unavailable: {missing}")


@pytest.fixture
def valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path / "valkey", extra_config={"appendfsync": "always"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def admin(valkey: EmbeddedValkey) -> AsyncIterator[Redis]:
    """The kit's own connection to Valkey, to change its configuration."""
    client = connect_redis(valkey.url, timeout_s=2.0)
    yield client
    await client.aclose()


@pytest.fixture
async def kit_server(valkey: EmbeddedValkey, tmp_path: Path) -> AsyncIterator[App]:
    settings = ServerSettings(
        host="127.0.0.1", port=0, redis_url=valkey.url, key_prefix="kit", data_dir=tmp_path,
        shutdown_grace_seconds=2.0, redis_timeout_seconds=REDIS_TIMEOUT_S,
        fsync_timeout_seconds=FSYNC_TIMEOUT_S,
    )  # fmt: skip
    redis = connect_redis(valkey.url, settings.redis_timeout_seconds)
    app = await start_app(settings, Store(redis, store_config(settings)))
    yield app
    await stop_app(app)
    await redis.aclose()


@pytest.fixture
async def stub(kit_server: App) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{kit_server.port}") as channel:
        yield svc_grpc.JobQueueServiceStub(channel)


@pytest.fixture
def producer(producer_command: tuple[str, list[str]], kit_server: App, tmp_path: Path) -> Iterator[Producer]:
    language, command = producer_command
    process = ProducerProcess(command, target=f"127.0.0.1:{kit_server.port}", log=tmp_path / "producer.log")
    yield Producer(language, process)
    process.stop()


# -- 1. every op, with every option, read back through the library ----------------------------


async def test_enqueue_with_every_option_reads_back_through_the_library(
    producer: Producer, admin: Redis
) -> None:
    queue = "conf-options"
    options = {"priority": "low", "max_attempts": 5, "idempotency_key": "order-1", "metadata": METADATA}
    low = await producer.ok("enqueue", queue=queue, payload=PAYLOAD, options={**options, **FSYNCED})
    waits = await waitaof_calls(admin)
    again = await producer.ok(
        "enqueue", queue=queue, payload={"n": 2}, options={"idempotency_key": "order-1"}
    )
    high = await producer.ok("enqueue", queue=queue, payload={"n": 3}, options={"priority": "high"})
    normal = await producer.ok("enqueue", queue=queue, payload={"n": 4}, options={"durability": "applied"})
    later = await producer.ok("enqueue", queue=queue, payload={"n": 5}, options={"delay_ms": 3_600_000})

    job = await producer.ok("get", job_id=low["job_id"])

    assert low["duplicate"] is False and again == {"job_id": low["job_id"], "duplicate": True}
    assert job == {
        "id": low["job_id"], "queue": queue, "state": "queued", "attempts": 0, "max_attempts": 5,
        "payload": PAYLOAD, "result": None, "metadata": METADATA, "last_error": "", "errors": [],
    }  # fmt: skip
    queued = await producer.ok("list_jobs", queue=queue, state="queued", page_size=10)
    assert queued == [high["job_id"], normal["job_id"], low["job_id"]]  # the lease order
    assert (await producer.ok("get", job_id=later["job_id"]))["state"] == "scheduled"
    assert waits >= 1 and await waitaof_calls(admin) == waits  # only the fsynced one waited


async def test_a_batch_keeps_its_order_and_each_jobs_options(producer: Producer, admin: Redis) -> None:
    queue, other = "conf-batch", "conf-batch-other"
    jobs = [{"queue": queue, "payload": {"n": n}, "options": {"max_attempts": n + 1}} for n in range(3)]
    jobs.append({"queue": other, "payload": {"n": 3}, "options": {"delay_ms": 60_000}})

    results = await producer.ok("enqueue_batch", jobs=jobs, durability="fsynced")
    got = [await producer.ok("get", job_id=result["job_id"]) for result in results]

    assert [(job["queue"], job["payload"], job["max_attempts"], job["state"]) for job in got] == [
        (queue, {"n": 0}, 1, "queued"),
        (queue, {"n": 1}, 2, "queued"),
        (queue, {"n": 2}, 3, "queued"),
        (other, {"n": 3}, 3, "scheduled"),  # the default max_attempts
    ]
    assert not any(result["duplicate"] for result in results) and await waitaof_calls(admin) >= 1
    counts = {"queued": 3, "scheduled": 0, "active": 0, "completed": 0, "dead": 0, "cancelled": 0}
    assert await producer.ok("stats", queue=queue) == [{"queue": queue, **counts}]
    assert [row["queue"] for row in await producer.ok("stats")] == [queue, other]


async def test_list_jobs_reads_every_page_in_order_and_the_program_exits_0(producer: Producer) -> None:
    queue = "conf-pages"
    ids = [(await producer.ok("enqueue", queue=queue, payload={"n": n}))["job_id"] for n in range(7)]

    listed = await producer.ok("list_jobs", queue=queue, state="queued", page_size=3)

    assert listed == ids
    assert await producer.ok("list_jobs", queue=queue, state="dead", page_size=3) == []
    assert await asyncio.to_thread(producer.process.close) == 0


async def test_cancel_retry_and_wait_for_a_job_another_party_settles(producer: Producer, stub: Stub) -> None:
    queue = "conf-lifecycle"
    job_id = (await producer.ok("enqueue", queue=queue, payload={"n": 1}, options={"delay_ms": 3_600_000}))[
        "job_id"
    ]
    assert await producer.ok("cancel", job_id=job_id) is None
    cancelled = await producer.ok("wait", job_id=job_id, timeout_ms=5_000)
    listed = await producer.ok("list_jobs", queue=queue, state="cancelled", page_size=10)
    assert await producer.ok("retry", job_id=job_id) is None
    stream = await LeaseStream(stub).subscribe(queue)
    (first,) = await stream.wait_jobs(1)
    await stream.fail(first, "boom", non_retryable=True)
    dead = await producer.ok("wait", job_id=job_id, timeout_ms=10_000)
    await producer.ok("retry", job_id=job_id)
    # The producer waits while the kit, another party, leases and acks the job.
    waiting = asyncio.create_task(producer.ok("wait", job_id=job_id, timeout_ms=20_000))
    second = (await stream.wait_jobs(2))[1]
    await stream.ack(second, result={"by": "the kit"})
    done = await waiting
    await stream.close()

    assert (cancelled["state"], listed) == ("cancelled", [job_id])
    assert (dead["state"], dead["attempts"], dead["errors"], dead["last_error"]) == (
        "dead",
        1,
        ["boom"],
        "boom",
    )
    assert (done["state"], done["result"], done["attempts"]) == ("completed", {"by": "the kit"}, 1)


# -- 2. every reason a producer can provoke, as the library's typed error ---------------------


async def test_request_errors_are_typed_and_name_the_field(producer: Producer) -> None:
    queued = await producer.ok("enqueue", queue="conf-errors", payload={"n": 1})

    bad_queue = await producer.error("enqueue", queue="not a queue!", payload={"n": 1})
    unknown = await producer.error("get", job_id=UNKNOWN_JOB)
    not_dead = await producer.error("retry", job_id=queued["job_id"])

    assert bad_queue == producer.expected("INVALID_ARGUMENT", field="queue")
    assert unknown == producer.expected("JOB_NOT_FOUND")
    assert not_dead == producer.expected("WRONG_STATE")


async def test_fsynced_writes_valkey_cannot_confirm_are_typed_errors(
    producer: Producer, admin: Redis
) -> None:
    job = {"queue": "conf-fsync", "payload": {"n": 1}, "options": FSYNCED}
    await producer.ok("enqueue", **job)  # the server learns that fsync works
    await admin.config_set("appendfsync", "no")  # from now on WAITAOF waits in vain
    try:
        unconfirmed = await producer.error("enqueue", **job)
        refused = await producer.error("enqueue", **job)  # the server checked again: refused up front
    finally:
        await admin.config_set("appendfsync", "always")

    assert unconfirmed == producer.expected("FSYNC_NOT_CONFIRMED")
    assert refused == producer.expected("DURABILITY_UNAVAILABLE")


async def test_a_full_store_is_a_typed_error(producer: Producer, admin: Redis) -> None:
    await admin.config_set("maxmemory", 1)
    try:
        full = await producer.error("enqueue", queue="conf-full", payload={"n": 1})
    finally:
        await admin.config_set("maxmemory", 0)

    assert full == producer.expected("STORE_FULL")


async def test_a_store_that_does_not_answer_in_time_is_a_typed_error(
    producer: Producer, admin: Redis
) -> None:
    await admin.client_pause(PAUSE_MS, all=False)  # writes wait; the server gives up after 0.5 s
    try:
        unavailable = await producer.error("enqueue", queue="conf-paused", payload={"n": 1})
    finally:
        await admin.client_unpause()

    assert unavailable == producer.expected("STORE_UNAVAILABLE")
