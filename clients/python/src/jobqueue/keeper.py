"""LeaseKeeper: extends the lease of every running job before it expires.

Each lease is extended once two thirds of its length have passed since it was granted or
last extended (so about a third of it is left), measured on the local monotonic clock from
when the grant was received or the extend sent: never by comparing our clock with the
server's. Extends that are due within the next sixth of a lease ride along with one that
is due now, so a busy worker sends few, large messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from jobqueue import convert
from jobqueue.v1 import job_queue_service_pb2 as svc

EXTEND_AT = 2 / 3
RIDE_ALONG = 1 / 6


@dataclass
class _Lease:
    token: str
    length_s: float
    next_at: float  # loop time of the next extend

    @property
    def earliest_at(self) -> float:
        return self.next_at - self.length_s * RIDE_ALONG


class LeaseKeeper:
    """Schedules ExtendRequests for tracked leases; `send` queues one for the stream."""

    def __init__(self, send: Callable[[svc.ExtendRequest], None]) -> None:
        self._send = send
        self._leases: dict[str, _Lease] = {}
        self._changed = asyncio.Event()

    def track(self, job_id: str, token: str, length_s: float) -> None:
        now = asyncio.get_running_loop().time()
        self._leases[job_id] = _Lease(token, length_s, now + length_s * EXTEND_AT)
        self._changed.set()

    def forget(self, job_id: str) -> None:
        self._leases.pop(job_id, None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._changed.clear()
            self._extend_due(loop.time())
            wake = min((lease.earliest_at for lease in self._leases.values()), default=None)
            timeout = None if wake is None else max(0.0, wake - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._changed.wait()

    def _extend_due(self, now: float) -> None:
        for job_id, lease in self._leases.items():
            if lease.earliest_at <= now:
                lease.next_at = now + lease.length_s * EXTEND_AT
                # The length is explicit: an unset one makes the server use the job's own
                # lease length or its default, not the stream's.
                duration = convert.to_duration(lease.length_s, "lease_duration")
                self._send(svc.ExtendRequest(job_id=job_id, lease_token=lease.token, lease_duration=duration))
