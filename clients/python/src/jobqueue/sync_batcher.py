"""Batcher: the threading driver of producer batching (the rules are in batching.py).

Batches are sent as EnqueueBatch calls (the asyncio driver uses an EnqueueStream; here a
stream would need a thread of its own to read it), with gRPC's non-blocking ``future()`` calls,
answered from gRPC's callback thread, so no thread is started. The linger needs no timer either: the caller
who opened a batch is waiting anyway, so it waits for `linger` first and then sends its
batch if it is still open. The asyncio driver, aio_batcher.py, mirrors it.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
from typing import Any

import grpc

from jobqueue import batching, timing
from jobqueue.batching import Batch, Batching, Call, Gatherer, Outcome
from jobqueue.errors import DeadlineExceeded, from_rpc_error
from jobqueue.models import EnqueueResult
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue.v1 import job_queue_service_pb2_grpc as svc_grpc

SyncCall = Call["concurrent.futures.Future[EnqueueResult]"]
SyncBatch = Batch["concurrent.futures.Future[EnqueueResult]"]
# A caller's answer comes by its deadline (its batch's call carries it at the latest); past
# this margin on top, something is broken and the caller gives up rather than hang.
ANSWER_MARGIN_S = 5.0


class Batcher:
    """Gathers concurrent ``enqueue`` calls (from threads) of one Client into EnqueueBatch calls."""

    def __init__(self, stub: svc_grpc.JobQueueServiceStub, settings: Batching) -> None:
        self._stub = stub
        self._linger_s = settings.linger_s
        self._gatherer: Gatherer[concurrent.futures.Future[EnqueueResult]] = Gatherer(settings)
        self._lock = threading.Lock()

    def submit(self, request: svc.EnqueueRequest, timeout_s: float) -> EnqueueResult:
        """Sends `request` in the next batch and waits for its own answer."""
        deadline = timing.monotonic() + timeout_s
        call: SyncCall = Call(request, request.ByteSize(), deadline, concurrent.futures.Future())
        with self._lock:
            to_send, opened = self._gatherer.add(call)
        self._send(to_send)
        try:
            return self._wait(call, opened)
        except BaseException:
            if not call.waiter.done():  # KeyboardInterrupt, or no answer: do not send it after all
                with self._lock:
                    self._gatherer.withdraw(call)
            raise

    def _wait(self, call: SyncCall, opened: SyncBatch | None) -> EnqueueResult:
        if opened is not None:
            try:
                return call.waiter.result(self._linger_s)
            except TimeoutError:
                if call.waiter.done():
                    raise  # the answer itself
                self._lingered(opened)
        try:
            return call.waiter.result(max(0.0, call.deadline - timing.monotonic()) + ANSWER_MARGIN_S)
        except TimeoutError:
            if call.waiter.done():
                raise
            raise DeadlineExceeded("no answer from the server in time") from None

    def close(self) -> None:
        """Sends what is pending and waits for every answer (no stream to end: see the module)."""
        self.flush()

    def flush(self) -> None:
        """Sends every open batch and waits until every batch pending now is answered."""
        with self._lock:
            to_send, pending = self._gatherer.flush()
            events = [threading.Event() for _ in pending]
            for batch, event in zip(pending, events, strict=True):
                batch.on_done.append(event.set)
        self._send(to_send)
        for event in events:
            event.wait()

    def _lingered(self, batch: SyncBatch) -> None:
        with self._lock:
            to_send = self._gatherer.lingered(batch)
        self._send(to_send)

    def _send(self, batches: list[SyncBatch]) -> None:
        for batch in batches:
            timeout = batching.timeout(batch, timing.monotonic())
            try:
                future: grpc.Future[Any]
                if len(batch.calls) == 1:  # a lone job is a plain Enqueue, with a single enqueue's errors
                    future = self._stub.Enqueue.future(batch.calls[0].request, timeout=timeout)
                else:
                    future = self._stub.EnqueueBatch.future(batching.batch_request(batch), timeout=timeout)
            except Exception as error:  # e.g. the channel was closed: each caller gets the error
                self._answered(batch, error)
                continue
            future.add_done_callback(functools.partial(self._on_done, batch))

    def _on_done(self, batch: SyncBatch, future: grpc.Future[Any]) -> None:
        try:
            response = future.result()
        except grpc.RpcError as error:
            self._answered(batch, from_rpc_error(error))
            return
        except Exception as error:
            self._answered(batch, error)
            return
        if isinstance(response, svc.EnqueueResponse):
            self._answered(batch, [response])
        else:
            self._answered(batch, response.responses)

    def _answered(self, batch: SyncBatch, outcome: Outcome) -> None:
        batch.calls = batching.deliver(batch, outcome)
        if batch.calls:  # one job was refused alone: the others go again
            self._send([batch])
            return
        with self._lock:
            to_send = self._gatherer.answered(batch)
        self._send(to_send)
