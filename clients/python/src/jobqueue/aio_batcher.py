"""AsyncBatcher: the asyncio driver of producer batching (the rules are in batching.py).

Batches go on an EnqueueStream per durability level (enqueue_stream.py: a stream answers in
order, so a batch waiting for the disk must not hold up the answers of the others), or as
EnqueueBatch calls to a server without it. One task per batch in flight and one loop timer
per open batch; nothing per job but its future. The threading driver, sync_batcher.py,
mirrors it for the blocking Client.
"""

from __future__ import annotations

import asyncio
import functools

import grpc

from jobqueue import batching, timing
from jobqueue.batching import Batch, Batching, Call, Gatherer, Outcome
from jobqueue.enqueue_stream import EnqueueStream, StreamUnsupported
from jobqueue.errors import from_rpc_error
from jobqueue.models import EnqueueResult
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

AsyncCall = Call["asyncio.Future[EnqueueResult]"]
AsyncBatch = Batch["asyncio.Future[EnqueueResult]"]


class AsyncBatcher:
    """Gathers concurrent ``enqueue`` calls of one AsyncClient into batches."""

    def __init__(self, stub: svc_grpc.JobQueueServiceAsyncStub, settings: Batching) -> None:
        self._stub = stub
        self._streams: dict[int, EnqueueStream] = {}  # by durability level, opened on first use
        self._unsupported = False  # the server has no EnqueueStream
        self._linger_s = settings.linger_s
        self._gatherer: Gatherer[asyncio.Future[EnqueueResult]] = Gatherer(settings, stream=True)
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to the senders

    async def submit(self, request: svc.EnqueueRequest, timeout_s: float) -> EnqueueResult:
        """Sends `request` in the next batch and waits for its own answer."""
        loop = asyncio.get_running_loop()
        deadline = timing.monotonic() + timeout_s
        call: AsyncCall = Call(request, request.ByteSize(), deadline, loop.create_future())
        to_send, opened = self._gatherer.add(call)
        if opened is not None:
            opened.timer = loop.call_later(self._linger_s, self._lingered, opened)
        self._send(to_send)
        try:
            return await call.waiter
        except asyncio.CancelledError:
            self._gatherer.withdraw(call)
            raise

    async def close(self) -> None:
        """Sends what is pending, waits for every answer, then ends the stream."""
        await self.flush()
        for stream in self._streams.values():
            await stream.close()

    async def flush(self) -> None:
        """Sends every open batch and waits until every batch pending now is answered."""
        loop = asyncio.get_running_loop()
        to_send, pending = self._gatherer.flush()
        waits: list[asyncio.Future[None]] = []
        for batch in pending:
            waits.append(loop.create_future())
            batch.on_done.append(functools.partial(_set_done, waits[-1]))
        self._send(to_send)
        if waits:
            await asyncio.wait(waits)

    def _lingered(self, batch: AsyncBatch) -> None:
        self._send(self._gatherer.lingered(batch))

    def _send(self, batches: list[AsyncBatch]) -> None:
        for batch in batches:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: AsyncBatch) -> None:
        try:
            while batch.calls:
                batch.calls = batching.deliver(batch, await self._call(batch))
        except asyncio.CancelledError:  # with the loop: the callers must not wait for ever
            for call in batch.calls:
                call.waiter.cancel()
            raise
        finally:
            # The slot is freed one loop turn later, once the callers just answered have run:
            # the next jobs they enqueue then join one batch, instead of the first going
            # alone (nothing in flight) and the rest after it.
            asyncio.get_running_loop().call_soon(self._answered, batch)

    def _answered(self, batch: AsyncBatch) -> None:
        self._send(self._gatherer.answered(batch))

    async def _call(self, batch: AsyncBatch) -> Outcome:
        timeout = batching.timeout(batch, timing.monotonic())
        if not self._unsupported:
            stream = self._streams.get(batch.durability)
            if stream is None:
                stream = self._streams[batch.durability] = EnqueueStream(self._stub)
            try:
                return await stream.send([call.request for call in batch.calls], timeout)
            except StreamUnsupported:
                self._unsupported = True
                self._gatherer.use_calls()
        try:
            if len(batch.calls) == 1:  # a lone job is a plain Enqueue, with a single enqueue's errors
                return [await self._stub.Enqueue(batch.calls[0].request, timeout=timeout)]
            response = await self._stub.EnqueueBatch(batching.batch_request(batch), timeout=timeout)
        except grpc.RpcError as error:
            return from_rpc_error(error)
        except Exception as error:  # e.g. the channel was closed: each caller gets the error
            return error
        return response.responses


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():  # the flush may have been cancelled
        future.set_result(None)
