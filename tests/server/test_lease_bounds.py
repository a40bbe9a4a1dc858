"""What one Lease stream can make the server hold: at most `max_in_flight` acks, fails and
extends per message, a bounded number of confirmations waiting for a worker that does not read
them, and no stream that never subscribes (issue 12's probe: 300,000 acks in one message
stalled the server for 8 s; a worker that never read grew it by 500 MB)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from redis.asyncio import Redis

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc
from jobqueue_server.api import validation
from jobqueue_server.api.lease_session import MAX_UNSENT_CONFIRMATIONS, LeaseSession
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import App, limits, start_app, store_config
from jobqueue_server.store import Store
from tests.server.streams import LeaseStream
from tests.server.test_lease_stream import enqueue
from tests.server.test_unary_calls import error_reason

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub


async def test_a_message_with_more_settles_than_max_in_flight_ends_the_stream_and_settles_none(
    stub: Stub, settings: ServerSettings
) -> None:
    job_id = await enqueue(stub)
    stream = await LeaseStream(stub).subscribe("q")
    (leased,) = await stream.wait_jobs(1)
    good = svc.AckRequest(job_id=job_id, lease_token=leased.lease_token)
    bogus = [svc.AckRequest(job_id=f"q:{n}", lease_token="t") for n in range(settings.max_in_flight)]

    await stream.call.write(svc.LeaseRequest(acks=[good, *bogus]))
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await asyncio.wait_for(stream.call.read(), timeout=10)  # the end, not an answer

    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(ended.value) == "INVALID_ARGUMENT"
    assert (ended.value.details() or "").startswith(f"acks: at most {settings.max_in_flight}")
    job = (await stub.GetStatus(svc.GetStatusRequest(job_id=job_id))).job
    assert job.state != job_pb2.JOB_STATE_COMPLETED  # released with the stream, not acked


async def test_a_message_of_max_in_flight_settles_is_taken(stub: Stub, settings: ServerSettings) -> None:
    stream = await LeaseStream(stub).subscribe("q")
    bogus = [svc.AckRequest(job_id=f"q:{n}", lease_token="t") for n in range(settings.max_in_flight)]

    await stream.call.write(svc.LeaseRequest(acks=bogus))
    confirmations = await stream.wait_confirmations(settings.max_in_flight)

    assert len(confirmations) == settings.max_in_flight  # each refused on its own, the stream goes on


async def test_a_worker_that_does_not_read_is_held_once_the_unsent_confirmations_reach_the_bound(
    app: App, stub: Stub, settings: ServerSettings
) -> None:
    await enqueue(stub, "bounds")
    acks_per_message, most_messages = 100, 1000
    pulled = 0
    stuck, gone = asyncio.Event(), asyncio.Event()

    async def send(message: bytes) -> None:
        # The empty first answer goes; the message with the leased job does not complete until
        # the stream is gone: the worker stopped reading, and the dispatcher is stuck writing it.
        if message:
            stuck.set()
            await gone.wait()
            raise ConnectionError("the stream ended")

    async def requests() -> AsyncIterator[svc.LeaseRequest]:
        nonlocal pulled
        await stuck.wait()  # acks arrive while the dispatcher's write is under way
        while pulled < most_messages:
            pulled += 1
            await asyncio.sleep(0)
            # Refused without a Redis call (no lease token): only the answers pile up.
            yield svc.LeaseRequest(acks=[svc.AckRequest(job_id=f"q:{n}") for n in range(acks_per_message)])

    first = svc.LeaseRequest(subscribe=svc.Subscribe(queues=["bounds"], max_in_flight=1))
    sub = validation.subscription(first.subscribe, limits(settings))
    session = LeaseSession(app.store, app.signals, limits(settings), sub, 60.0, lambda ms, queue: None)
    serving = asyncio.create_task(session.serve(first, requests(), send))
    await stuck.wait()
    for _ in range(3 * most_messages):  # turns enough for every request, were none held back
        await asyncio.sleep(0)
    serving.cancel()
    await asyncio.wait([serving])
    gone.set()
    await session.close()

    assert pulled <= MAX_UNSENT_CONFIRMATIONS // acks_per_message + 3


async def test_a_stream_that_never_subscribes_is_ended_naming_subscribe(
    redis: Redis, settings: ServerSettings
) -> None:
    quick = settings.model_copy(update={"subscribe_timeout_seconds": 0.3})
    app = await start_app(quick, Store(redis, store_config(quick)))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            call = svc_grpc.JobQueueServiceStub(channel).Lease()  # opened, and nothing sent
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await asyncio.wait_for(call.read(), timeout=10)
    finally:
        await app.stop(grace_s=0)

    assert ended.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (ended.value.details() or "").startswith("subscribe: a Lease stream must subscribe within 0.3 s")
    assert app.servicer.open_streams == 0
