"""EnqueueStream for the asyncio producer: batches sent on one stream, each answered in order.

A stream message costs the server a fraction of a unary call, and a batch need not wait for the
one before it to be answered. The stream is opened on the first batch and again after it
breaks; a server without EnqueueStream (UNIMPLEMENTED) is remembered, and the batcher then
sends EnqueueBatch calls instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

import grpc

from jobqueue.errors import DeadlineExceeded, Unavailable, from_rpc_error, from_status
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

Answer = Sequence[svc.EnqueueResponse] | BaseException


class StreamUnsupported(Exception):
    """The server has no EnqueueStream: send EnqueueBatch calls."""


class EnqueueStream:
    """One producer's EnqueueStream, shared by its batches."""

    def __init__(self, stub: svc_grpc.JobQueueServiceAsyncStub) -> None:
        self._stub = stub
        self._outbox: asyncio.Queue[svc.EnqueueStreamRequest | None] | None = None
        self._waiting: deque[tuple[int, asyncio.Future[Answer]]] = deque()
        self._sequence = 0
        self._reader: asyncio.Task[None] | None = None
        self.unsupported = False

    async def send(self, requests: Sequence[svc.EnqueueRequest], timeout_s: float | None) -> Answer:
        """Sends one batch; its answer: one response per job, or the error for all of them.

        Raises StreamUnsupported when the server has no EnqueueStream.
        """
        if self.unsupported:
            raise StreamUnsupported
        outbox = self._outbox if self._outbox is not None else self._open()
        self._sequence += 1
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((self._sequence, answer))
        # Each request carries its level, so the message leaves `durability` unset.
        outbox.put_nowait(svc.EnqueueStreamRequest(sequence=self._sequence, requests=requests))
        if timeout_s is None:
            result = await answer
        else:
            try:  # the answer stays awaited by the reader: the stream goes on after a timeout
                result = await asyncio.wait_for(asyncio.shield(answer), timeout_s)
            except TimeoutError:
                return DeadlineExceeded(
                    "no answer to the batch before its deadline; its jobs may be enqueued"
                )
        if isinstance(result, StreamUnsupported):
            raise result
        return result

    async def close(self) -> None:
        """Ends the stream once every batch sent is answered."""
        if self._outbox is not None:
            self._outbox.put_nowait(None)
            self._outbox = None
        if self._reader is not None:
            await asyncio.wait([self._reader])

    def _open(self) -> asyncio.Queue[svc.EnqueueStreamRequest | None]:
        outbox: asyncio.Queue[svc.EnqueueStreamRequest | None] = asyncio.Queue()
        call = self._stub.EnqueueStream(_drain(outbox))
        self._outbox = outbox
        self._reader = asyncio.get_running_loop().create_task(self._read(call, outbox))
        return outbox

    async def _read(
        self,
        call: grpc.aio.StreamStreamCall[svc.EnqueueStreamRequest, svc.EnqueueStreamResponse],
        outbox: asyncio.Queue[svc.EnqueueStreamRequest | None],
    ) -> None:
        ended: BaseException = Unavailable(
            "the enqueue stream ended before answering; the jobs may be enqueued"
        )
        try:
            async for response in call:
                sequence, answer = self._waiting.popleft()
                if response.sequence != sequence:
                    ended = Unavailable(f"the server answered request {response.sequence}, not {sequence}")
                    call.cancel()
                    break
                if not answer.done():
                    error = from_status(response.error) if response.HasField("error") else None
                    answer.set_result(error if error is not None else response.responses)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                self.unsupported = True
                ended = StreamUnsupported()
            else:
                ended = from_rpc_error(error)
        finally:
            if self._outbox is outbox:  # the next batch opens a new stream
                self._outbox = None
            outbox.put_nowait(None)
            while self._waiting:  # each unanswered batch: written or not, nobody can tell
                _, answer = self._waiting.popleft()
                if not answer.done():
                    answer.set_result(ended)


async def _drain(
    outbox: asyncio.Queue[svc.EnqueueStreamRequest | None],
) -> AsyncIterator[svc.EnqueueStreamRequest]:
    while (request := await outbox.get()) is not None:
        yield request
