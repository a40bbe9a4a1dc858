"""Outbox: acks, fails and extends waiting to go out, coalesced into few LeaseRequests."""

from __future__ import annotations

import asyncio
from collections import deque

from jobqueue.v1 import job_queue_service_pb2 as svc

# Bounds on one LeaseRequest: acks carry results of up to 1 MiB each, and the server
# refuses messages over 64 MiB.
MAX_ITEMS_PER_REQUEST = 1000
MAX_BYTES_PER_REQUEST = 4 * 1024 * 1024

Item = svc.AckRequest | svc.FailRequest | svc.ExtendRequest


class Outbox:
    """Everything queued since the last write goes out in one message (up to the bounds)."""

    def __init__(self) -> None:
        self._items: deque[Item] = deque()
        self._subscribe: svc.Subscribe | None = None
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, item: Item) -> None:
        self._items.append(item)
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
        return len(self._items)

    async def next(self) -> svc.LeaseRequest | None:
        """The next message to write; waits while there is none; None once closed and empty."""
        while not self._items and self._subscribe is None:
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
        size = 0
        for _ in range(min(len(self._items), MAX_ITEMS_PER_REQUEST)):
            item = self._items[0]
            size += item.ByteSize()
            if size > MAX_BYTES_PER_REQUEST and request.ByteSize() > 0:
                break
            self._items.popleft()
            _append(request, item)
        return request


def _append(request: svc.LeaseRequest, item: Item) -> None:
    if isinstance(item, svc.AckRequest):
        request.acks.append(item)
    elif isinstance(item, svc.FailRequest):
        request.fails.append(item)
    else:
        request.extends.append(item)
