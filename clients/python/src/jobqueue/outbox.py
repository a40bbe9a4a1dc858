"""Outbox: acks, fails, extends and progress waiting to go out, coalesced into few LeaseRequests."""

from __future__ import annotations

import asyncio
from collections import deque

from google.protobuf import struct_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc

# Bounds on one LeaseRequest: acks carry results of up to 1 MiB each, and the server
# refuses messages over 64 MiB.
MAX_ITEMS_PER_REQUEST = 1000
MAX_BYTES_PER_REQUEST = 4 * 1024 * 1024
# An ack's fields besides its id, token and result: tags, lengths and the durability.
ACK_OVERHEAD_BYTES = 16

#: An ack as the worker keeps it until it is written: (job id, lease token, result or None, the
#: handler's run in nanoseconds or -1 when unknown). A tuple, not an AckRequest: one is made per
#: job, and building the message in place, at write time, costs a fifth of making one and
#: copying it in.
Ack = tuple[str, str, struct_pb2.Struct | None, int]
Other = svc.FailRequest | svc.ExtendRequest | svc.ProgressUpdate


class Outbox:
    """Everything queued since the last write goes out in one message (up to the bounds)."""

    def __init__(self, ack_durability: job_pb2.Durability.ValueType = job_pb2.DURABILITY_UNSPECIFIED) -> None:
        self._ack_durability = ack_durability
        self._acks: deque[Ack] = deque()
        self._others: deque[Other] = deque()
        self._subscribe: svc.Subscribe | None = None
        self._ready = asyncio.Event()
        self._closed = False

    def ack(self, ack: Ack) -> None:
        self._acks.append(ack)
        self._ready.set()

    def put(self, item: Other) -> None:
        self._others.append(item)
        self._ready.set()

    def resubscribe(self, subscribe: svc.Subscribe) -> None:
        """Sends a later Subscribe (a new window) with the next message."""
        self._subscribe = subscribe
        self._ready.set()

    def close(self) -> None:
        """No more items: `next` returns what is left, then None."""
        self._closed = True
        self._ready.set()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._acks) + len(self._others)

    async def next(self) -> svc.LeaseRequest | None:
        """The next message to write; waits while there is none; None once closed and empty."""
        while not self._acks and not self._others and self._subscribe is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._take()

    def _take(self) -> svc.LeaseRequest:
        request = svc.LeaseRequest()
        if self._subscribe is not None:
            request.subscribe.CopyFrom(self._subscribe)
            self._subscribe = None
        room = self._take_others(request, MAX_BYTES_PER_REQUEST)
        self._take_acks(request, room)
        return request

    def _take_others(self, request: svc.LeaseRequest, room: int) -> int:
        others = self._others
        for _ in range(min(len(others), MAX_ITEMS_PER_REQUEST)):
            size = others[0].ByteSize()
            if size > room and request.ByteSize() > 0:
                break
            item = others.popleft()
            if isinstance(item, svc.FailRequest):
                request.fails.append(item)
            elif isinstance(item, svc.ExtendRequest):
                request.extends.append(item)
            else:
                request.progress.append(item)
            room -= size
        return room

    def _take_acks(self, request: svc.LeaseRequest, room: int) -> None:
        acks, written, durability = self._acks, request.acks, self._ack_durability
        taken = len(request.fails) + len(request.extends) + len(request.progress)
        for _ in range(min(len(acks), MAX_ITEMS_PER_REQUEST - taken)):
            job_id, token, result, ran_ns = acks[0]
            size = len(job_id) + len(token) + ACK_OVERHEAD_BYTES
            size += 0 if result is None else result.ByteSize()
            if size > room and (written or request.ByteSize() > 0):
                break
            acks.popleft()
            room -= size
            entry = written.add()
            entry.job_id = job_id
            entry.lease_token = token
            if durability:
                entry.durability = durability
            if result is not None:
                entry.result.CopyFrom(result)
            if ran_ns >= 0:  # the server's processing-time histogram (docs/monitoring.md)
                entry.handler_duration.FromNanoseconds(ran_ns)
