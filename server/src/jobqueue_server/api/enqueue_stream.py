"""EnqueueStream: batches from one producer on one stream, answered in order.

A producer sends the next request without waiting for the last answer, so a stream carries
jobs at the rate the producer makes them, with no call set up per batch (a unary call costs the
server several times the CPU of a stream message). Each request is validated as it is read and
handed to the group commit, so requests that arrive together, from this stream and any other,
share script calls. Answers go out in the order of the requests; at most MAX_UNANSWERED
requests are read ahead of them, so a producer faster than Redis is held by flow control.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import dependency_graph, validation, wire
from jobqueue_server.api.group_commit import GroupCommit, Outcomes
from jobqueue_server.api.registration import Malformed
from jobqueue_server.api.status import rpc_status_of
from jobqueue_server.errors import JobQueueError, ServerDraining
from jobqueue_server.ids import new_ulids
from jobqueue_server.store import Durability, NewJob, Partitions

# Requests read but not yet answered, per stream.
MAX_UNANSWERED = 64


class RefusedRequest:
    """A request refused before it reached the session (a queue outside the caller's token):
    answered with its error, in its turn, like a request validation refuses."""

    def __init__(self, sequence: int, error: JobQueueError) -> None:
        self.sequence = sequence
        self.error = error


Answer = Awaitable[bytes]
Requests = AsyncIterator[svc.EnqueueStreamRequest | Malformed | RefusedRequest]


class EnqueueStreamSession:
    """One EnqueueStream call."""

    def __init__(
        self,
        group_commit: GroupCommit,
        limits: validation.Limits,
        now_ms: Callable[[], int],
        draining: Callable[[], bool],
        find_missing: dependency_graph.FindMissing,
        partitions: Partitions,
    ) -> None:
        self._group_commit = group_commit
        self._partitions = partitions
        self._find_missing = find_missing
        self._limits = limits
        self._now_ms = now_ms
        self._draining = draining
        self._reader: asyncio.Task[None] | None = None
        self._ended = False
        self._answers: asyncio.Queue[Answer | None] = asyncio.Queue()
        self._room = asyncio.Semaphore(MAX_UNANSWERED)  # taken before a request is read

    async def serve(self, requests: Requests, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Answers every request read, in order, until the producer closes its side.

        Raises the error that ends the stream: a message that is not an EnqueueStreamRequest
        (nothing in it can be answered), or the server shutting down. Either way every request
        read before it is answered first; the ones not read were not written.
        """
        reader = self._reader = asyncio.create_task(self._read(aiter(requests)))
        try:
            while (answer := await self._answers.get()) is not None:
                await write(await answer)
                self._room.release()
        finally:
            reader.cancel()
            await asyncio.wait([reader])
            self._cancel_unanswered()
        if self._ended:
            raise ServerDraining("the server is shutting down; send the rest to another")
        if not reader.cancelled():
            reader.result()  # the reader's error, if it ended with one

    def end(self) -> None:
        """Graceful shutdown: read no more; the stream ends with UNAVAILABLE once every request
        read is answered."""
        self._ended = True
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self, requests: Requests) -> None:
        try:
            while True:
                await self._room.acquire()
                request = await anext(requests, None)
                if request is None:
                    return
                if isinstance(request, Malformed):
                    raise request.error()
                if self._draining():
                    raise ServerDraining("the server is shutting down; send the rest to another")
                if isinstance(request, RefusedRequest):
                    self._answers.put_nowait(_ready(_refused(request.sequence, request.error)))
                else:
                    self._answers.put_nowait(self._start(request))
                    # One turn, so the request's jobs are written before the next read is set up
                    # (setting up a read costs more than most of an enqueue).
                    await asyncio.sleep(0)
        finally:
            self._answers.put_nowait(None)

    def _start(self, request: svc.EnqueueStreamRequest) -> Answer:
        """Validates `request` and starts writing its jobs; the answer it will get."""
        sequence = request.sequence
        try:
            requests = list(request.requests)
            jobs = validation.new_jobs(
                requests, self._limits, new_ulids(self._now_ms(), len(requests)), self._partitions
            )
            level = validation.batch_durability(request, self._limits)
        except JobQueueError as error:
            return _ready(_refused(sequence, error))
        if any(job.depends_on for job in jobs):
            written = self._enqueue_after_check(requests, jobs, level)
        else:
            written = self._group_commit.enqueue_many(jobs, level)
        return asyncio.ensure_future(_answer(sequence, written))

    async def _enqueue_after_check(
        self, requests: list[svc.EnqueueRequest], jobs: list[NewJob], level: Durability
    ) -> Outcomes:
        await dependency_graph.require_parents(requests, self._find_missing, batch=True)
        return await self._group_commit.enqueue_many(jobs, level)

    def _cancel_unanswered(self) -> None:
        while not self._answers.empty():
            answer = self._answers.get_nowait()
            if isinstance(answer, asyncio.Future):
                answer.cancel()


async def _answer(sequence: int, outcomes: Awaitable[Outcomes]) -> bytes:
    try:
        written = await outcomes
    except JobQueueError as error:
        return _refused(sequence, error)
    return wire.enqueue_stream_response(sequence, ((o.job_id, o.duplicate) for o in written))


def _refused(sequence: int, error: JobQueueError) -> bytes:
    return svc.EnqueueStreamResponse(sequence=sequence, error=rpc_status_of(error)).SerializeToString()


def _ready(answer: bytes) -> Answer:
    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    future.set_result(answer)
    return future
