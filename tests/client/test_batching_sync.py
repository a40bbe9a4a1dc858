"""Producer batching in the blocking Client: callers are threads (docs/clients.md, "Producer batching").

The server runs on this test's event loop, so the threads run in asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc

from jobqueue import Batching, Client, EnqueueResult, InvalidArgument
from tests.client.batch_calls import ENQUEUE, CallLog, SyncRecorder

T = TypeVar("T")
HELD = Batching(linger=60)


@contextmanager
def recorded(target: str, log: CallLog, batching: Batching | None = HELD) -> Iterator[Client]:
    channel = grpc.intercept_channel(grpc.insecure_channel(target), SyncRecorder(log))
    try:
        with Client(channel, batching=batching) as client:
            yield client
    finally:
        channel.close()


def in_threads(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Runs every call in a thread of its own, all at once; their results or errors in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BaseException:
        start.wait()
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


async def test_concurrent_threads_get_their_own_ids_in_fewer_calls(target: str, queue: str) -> None:
    log = CallLog()

    def scenario() -> tuple[list[Any], list[dict[str, Any]]]:
        with recorded(target, log, batching=Batching()) as client:

            def caller(lane: int) -> Callable[[], list[str]]:
                return lambda: [client.enqueue(queue, {"lane": lane, "n": n}).job_id for n in range(10)]

            lanes = in_threads([caller(lane) for lane in range(32)])
            ids = [job_id for lane in lanes if isinstance(lane, list) for job_id in lane]
            return lanes, [client.get(job_id).payload for job_id in ids]

    lanes, payloads = await asyncio.to_thread(scenario)

    assert all(isinstance(lane, list) for lane in lanes)
    assert len({job_id for lane in lanes for job_id in lane}) == 320
    expected = [(lane, n) for lane in range(32) for n in range(10)]
    assert sorted((p["lane"], p["n"]) for p in payloads) == expected
    assert log.jobs == 320 and len(log.calls) < 320 / 2


async def test_a_job_refused_alone_fails_only_its_thread(target: str, queue: str) -> None:
    log = CallLog()
    queues = [queue] * 8
    queues[5] = "not a queue!"

    def scenario() -> list[EnqueueResult | BaseException]:
        with recorded(target, log) as client:
            # Held: none goes out before every thread has enqueued (or the first one alone).
            return in_threads([lambda q=q: client.enqueue(q, {"n": 1}) for q in queues])

    outcomes = await asyncio.to_thread(scenario)

    refused = outcomes.pop(5)
    assert isinstance(refused, InvalidArgument) and refused.field == "queue"
    assert all(isinstance(outcome, EnqueueResult) for outcome in outcomes)
    assert log.jobs - len(log.calls[-1].requests) >= 7  # the refused batch, then the rest again


def hold_then(client: Client, log: CallLog, queue: str, then: Callable[[], T]) -> tuple[Any, Any, T]:
    """Enqueues one job held at the gate (in flight), and another sent meanwhile (max_jobs=1);
    runs `then` while the first is held, the gate opening a moment later; returns all three."""
    assert log.hold_first is not None
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.enqueue, queue, {"n": 1})
        log.wait_for(1)
        second = pool.submit(client.enqueue, queue, {"n": 2})
        log.wait_for(2)
        threading.Timer(0.2, log.hold_first.set).start()  # most likely after `then` began
        outcome = then()
        return first.result(), second.result(), outcome


async def test_flush_waits_for_every_batch_in_flight(target: str, queue: str) -> None:
    log = CallLog(hold_first=threading.Event())

    def scenario() -> tuple[Any, Any, int]:
        with recorded(target, log, batching=Batching(max_jobs=1, linger=60)) as client:

            def flush_then_count() -> int:
                client.flush()
                return client.stats(queue)[0].queued

            return hold_then(client, log, queue, flush_then_count)

    first, second, queued = await asyncio.to_thread(scenario)

    assert queued == 2  # answered, so written, before flush returned
    assert isinstance(first, EnqueueResult) and isinstance(second, EnqueueResult)


async def test_close_waits_for_every_batch_in_flight_before_the_channel_closes(
    target: str, queue: str
) -> None:
    log = CallLog(hold_first=threading.Event())

    def scenario() -> tuple[Any, Any, None]:
        channel = grpc.intercept_channel(grpc.insecure_channel(target), SyncRecorder(log))
        client = Client(channel, batching=Batching(max_jobs=1, linger=60))

        def close() -> None:
            client.close()
            channel.close()  # would cancel a call still in flight

        return hold_then(client, log, queue, close)

    first, second, _ = await asyncio.to_thread(scenario)

    assert isinstance(first, EnqueueResult) and isinstance(second, EnqueueResult)


async def test_without_batching_each_thread_sends_its_own_enqueue(target: str, queue: str) -> None:
    log = CallLog()

    def scenario() -> None:
        with recorded(target, log, batching=None) as client:
            in_threads([lambda: client.enqueue(queue) for _ in range(6)])

    await asyncio.to_thread(scenario)

    assert [sent.method for sent in log.calls] == [ENQUEUE] * 6
