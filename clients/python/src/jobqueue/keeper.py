"""LeaseKeeper: extends the lease of every running job before it expires.

Each lease is extended once two thirds of its length have passed since it was granted or
last extended (so about a third of it is left), measured on the local monotonic clock from
when the grant was received or the extend sent: never by comparing our clock with the
server's. Extends that are due within the next sixth of a lease ride along with one that
is due now, so a busy worker sends few, large messages.

Most jobs finish long before their first extension, so the keeper costs them nothing but a
place in a list: it looks at the jobs of a delivery only after their handlers had a first
turn, tracks the ones still running, and drops finished ones when it next looks at them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

from jobqueue import convert
from jobqueue.context import JobContext
from jobqueue.v1 import job_queue_service_pb2 as svc

EXTEND_AT = 2 / 3
RIDE_ALONG = 1 / 6
# Finished jobs leave the tracked ones when the next extend is due, or sooner once they
# are this many and twice as many as were left the last time: memory stays in proportion
# to the jobs running, for amortized constant work per job.
PRUNE_MIN = 1024


class LeaseKeeper:
    """Schedules ExtendRequests for running jobs; `send` queues one for the stream."""

    def __init__(self, send: Callable[[svc.ExtendRequest], None]) -> None:
        self._send = send
        self._arrived: list[tuple[float, list[JobContext]]] = []
        self._tracked: dict[str, JobContext] = {}
        self._next_at = math.inf  # loop time of the earliest extend (ride-along included)
        self._prune_above = PRUNE_MIN
        self._changed = asyncio.Event()

    def arrived(self, received_at: float, jobs: list[JobContext]) -> None:
        """Jobs granted at `received_at` (loop time), to extend while they run."""
        self._arrived.append((received_at, jobs))
        self._changed.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            self._admit()
            if loop.time() >= self._next_at:
                self._extend_due(loop.time())
            if self._next_at == math.inf:
                await self._changed.wait()  # nothing to extend: no timer either
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, self._next_at - loop.time())):
                    await self._changed.wait()

    def _admit(self) -> None:
        arrived, self._arrived = self._arrived, []
        for received_at, jobs in arrived:
            for ctx in jobs:
                if not ctx._done and not ctx.lease_lost:
                    length = ctx.lease_duration.total_seconds()
                    ctx._extend_at = received_at + length * EXTEND_AT
                    self._tracked[ctx.job_id] = ctx
                    self._next_at = min(self._next_at, ctx._extend_at - length * RIDE_ALONG)
        if len(self._tracked) > self._prune_above:
            self._tracked = {job_id: ctx for job_id, ctx in self._tracked.items() if not ctx._done}
            self._prune_above = max(PRUNE_MIN, 2 * len(self._tracked))

    def _extend_due(self, now: float) -> None:
        self._next_at = math.inf
        for job_id, ctx in list(self._tracked.items()):
            if ctx._done or ctx.lease_lost:
                del self._tracked[job_id]
                continue
            length = ctx.lease_duration.total_seconds()
            if ctx._extend_at - length * RIDE_ALONG <= now:
                ctx._extend_at = now + length * EXTEND_AT
                self._send(_extend(ctx, length))
            self._next_at = min(self._next_at, ctx._extend_at - length * RIDE_ALONG)


def _extend(ctx: JobContext, length_s: float) -> svc.ExtendRequest:
    # The length is explicit: an unset one makes the server use the job's own lease length
    # or its default, not the stream's.
    duration = convert.to_duration(length_s, "lease_duration")
    return svc.ExtendRequest(job_id=ctx.job_id, lease_token=ctx.lease_token, lease_duration=duration)
