"""EnqueueStream for the asyncio producer: batches sent on one stream, each answered in order.

A stream message costs the server a fraction of a unary call, and a batch need not wait for the
one before it to be answered. The stream is opened on the first batch and again after it
breaks; a server without EnqueueStream (UNIMPLEMENTED) is remembered, and the batcher then
sends EnqueueBatch calls instead.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import grpc

from jobqueue.errors import DeadlineExceeded, Unavailable, from_rpc_error, from_status
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

Answer = Sequence[svc.EnqueueResponse] | BaseException


class StreamUnsupported(Exception):
    """The server has no EnqueueStream: send EnqueueBatch calls."""


Call = grpc.aio.StreamStreamCall[svc.EnqueueStreamRequest, svc.EnqueueStreamResponse]


class EnqueueStream:
    """One producer's EnqueueStream, shared by its batches."""

    def __init__(self, stub: svc_grpc.JobQueueServiceAsyncStub) -> None:
        self._stub = stub
        self._call: Call | None = None
        # Batches write from their own tasks; gRPC takes one write at a time.
        self._writing = asyncio.Lock()
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
        call = self._call if self._call is not None else self._open()
        self._sequence += 1
        answer: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append((self._sequence, answer))  # the current call's
        # Each request carries its level, so the message leaves `durability` unset.
        request = svc.EnqueueStreamRequest(sequence=self._sequence, requests=requests)
        try:
            async with self._writing:
                await call.write(request)
        except (grpc.RpcError, asyncio.InvalidStateError):
            pass  # the stream broke: the reader answers this batch with its error
        if timeout_s is None:
            result = await answer
        else:
            try:  # the answer stays awaited by the reader: the stream goes on after a timeout
                result = await asyncio.wait_for(asyncio.shield(answer), timeout_s)
            except TimeoutError:
                return DeadlineExceeded("no answer before the deadline; the jobs may be enqueued")
        if isinstance(result, StreamUnsupported):
            raise result
        return result

    async def close(self) -> None:
        """Ends the stream once every batch sent is answered."""
        call, self._call = self._call, None
        if call is not None:
            try:
                async with self._writing:
                    await call.done_writing()
            except (grpc.RpcError, asyncio.InvalidStateError):
                pass  # it had ended already
        if self._reader is not None:
            await asyncio.wait([self._reader])

    def _open(self) -> Call:
        call = self._stub.EnqueueStream()
        self._call, self._waiting = call, deque()  # each call answers its own batches
        self._reader = asyncio.get_running_loop().create_task(self._read(call, self._waiting))
        return call

    async def _read(self, call: Call, waiting: deque[tuple[int, asyncio.Future[Answer]]]) -> None:
        ended: BaseException = Unavailable("the enqueue stream ended unanswered; the jobs may be enqueued")
        try:
            async for response in call:
                if not waiting or response.sequence != waiting[0][0]:
                    ended = Unavailable(f"the server answered request {response.sequence} out of turn")
                    call.cancel()
                    break
                _, answer = waiting.popleft()
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
            if self._call is call:  # the next batch opens a new stream
                self._call = None
            while waiting:  # each unanswered batch: written or not, nobody can tell
                _, answer = waiting.popleft()
                if not answer.done():
                    answer.set_result(ended)
