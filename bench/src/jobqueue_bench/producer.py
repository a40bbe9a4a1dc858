"""The producer side: payloads of a given size, and enqueues spread over the servers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import grpc

from jobqueue import AsyncClient, JobSpec

CALL_TIMEOUT_S = 60.0  # a large batch on busy cores is slow; a refusal still fails fast


class EnqueueFailed(RuntimeError):
    """Some enqueue calls of a measurement failed."""


def padding(payload_bytes: int) -> str:
    """The "pad" that makes {"t": <now>, "pad": ...} `payload_bytes` long as compact JSON."""
    empty = json.dumps({"t": time.time(), "pad": ""}, separators=(",", ":"))
    return "x" * max(0, payload_bytes - len(empty))


class Producer:
    """One AsyncClient per server; calls take the servers in turn."""

    def __init__(self, targets: Sequence[str], queue: str, payload_bytes: int) -> None:
        self.queue = queue
        self.clients = [AsyncClient(target, timeout=CALL_TIMEOUT_S) for target in targets]
        self._pad = padding(payload_bytes)

    async def __aenter__(self) -> Self:
        # Connect before any clock starts: the figures measure calls, not TCP handshakes.
        await asyncio.gather(*(client.stats(self.queue) for client in self.clients))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(client.close() for client in self.clients))

    def payload(self) -> dict[str, Any]:
        """A job's payload, stamped with the enqueue time."""
        return {"t": time.time(), "pad": self._pad}

    def _client(self, index: int) -> AsyncClient:
        return self.clients[index % len(self.clients)]

    async def one(self, index: int = 0) -> None:
        """One job with one Enqueue call (to server `index` modulo the servers)."""
        await self._client(index).enqueue(self.queue, self.payload())

    async def unary(self, jobs: int, in_flight: int) -> list[float]:
        """`jobs` Enqueue calls, `in_flight` at a time; returns each call's latency in ms."""
        latencies: list[float] = []
        remaining = iter(range(jobs))

        async def lane(index: int) -> None:
            client = self._client(index)
            for _ in remaining:  # the lanes share one iterator: each takes the next job
                began = time.perf_counter()
                await client.enqueue(self.queue, self.payload())
                latencies.append((time.perf_counter() - began) * 1000.0)

        async with asyncio.TaskGroup() as group:
            for index in range(min(in_flight, jobs)):
                group.create_task(lane(index))
        return latencies

    async def batches(self, jobs: int, batch: int) -> list[float]:
        """`jobs` jobs with enqueue_many calls of `batch`, one call in flight per server;
        returns each call's latency in ms."""
        latencies: list[float] = []
        sizes = iter([min(batch, jobs - start) for start in range(0, jobs, batch)])

        async def lane(client: AsyncClient) -> None:
            for size in sizes:
                specs = [JobSpec(queue=self.queue, payload=self.payload()) for _ in range(size)]
                began = time.perf_counter()
                await client.enqueue_many(specs)
                latencies.append((time.perf_counter() - began) * 1000.0)

        async with asyncio.TaskGroup() as group:
            for client in self.clients:
                group.create_task(lane(client))
        return latencies

    async def paced(self, jobs: int, rate: float) -> None:
        """`jobs` single enqueues started at `rate` per second whatever the earlier ones do
        (an open loop, so a slow server shows as latency, not as a lower rate)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        calls: list[asyncio.Task[None]] = []
        try:
            for index in range(jobs):
                delay = start + index / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                calls.append(asyncio.create_task(self.one(index)))
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            for call in calls:
                call.cancel()
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if failures:
            message = f"{len(failures)} of {jobs} enqueue calls failed, the first: {failures[0]!r}"
            if any(getattr(f, "code", None) == grpc.StatusCode.CANCELLED for f in failures):
                # grpc.aio ends calls still queued in an overloaded server with CANCELLED.
                message += f"; the server fell behind {rate:g} calls/s (lower --rate, add --servers)"
            raise EnqueueFailed(message)

    async def warmup(self, jobs: int) -> None:
        """`jobs` jobs the workers count apart ({"warmup": true}), through every server."""
        for index in range(jobs):
            await self._client(index).enqueue(self.queue, {"warmup": True})
