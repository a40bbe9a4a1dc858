"""The scheduler loop of one server: makes the jobs of the schedules whose next tick has come.

Every server runs it; no lock is taken. Each tick's job carries the idempotency key
`schedule:<name>:<tick ms>`, so servers making the same tick at once make one job, and a server
that dies between making a tick's job and moving the schedule's cursor leaves the next pass
(on any server) to make the same job again, which the key turns into the one already made.
The cursor then moves only forward, in one script (schedule_fire), so no tick is made twice in
sequence either. Ticks are read against Redis's clock: servers with skewed clocks agree.

A pass sleeps until the earliest next tick of any schedule, at most a sweep interval (a
schedule created on another server is seen within it), and is woken at once by a change made
on this server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.errors import FieldViolation, QueueLimitReached, StoreFull, StoreUnavailable
from jobqueue_server.scheduling import definition
from jobqueue_server.store.schedules import ScheduleStore, StoredSchedule

logger = logging.getLogger(__name__)

# Schedules handled per pass; with more due, the next pass follows at once.
BATCH = 100

# Enqueues the requests (each with the tick it is for); their job ids, in order.
Enqueue = Callable[[Sequence[tuple[int, svc.EnqueueRequest]]], Awaitable[list[str]]]


def idempotency_key(name: str, tick_ms: int) -> str:
    return f"schedule:{name}:{tick_ms}"


class Scheduler:
    """Makes due schedules' jobs; `wake()` after a local change."""

    def __init__(
        self,
        schedules: ScheduleStore,
        now_ms: Callable[[], Awaitable[int]],
        enqueue: Enqueue,
        interval_s: float,
    ) -> None:
        self._schedules = schedules
        self._now_ms = now_ms
        self._enqueue = enqueue
        self._interval_s = interval_s
        self._wake = asyncio.Event()
        self.passes = 0  # passes run so far (tests wait on it)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a change made during it is not missed
            try:
                delay_s = await self.run_once()
            except (StoreUnavailable, StoreFull) as error:
                logger.warning("scheduler pass failed: %s", error)
                delay_s = self._interval_s
            except Exception:
                # The loop must outlive any one pass, or this server stops making ticks.
                logger.exception("scheduler pass failed")
                delay_s = self._interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay_s)

    async def run_once(self) -> float:
        """One pass; the seconds until the next one is due."""
        now = await self._now_ms()
        names = await self._schedules.due(now, BATCH)
        for found in await self._schedules.many(names):
            await self._tick(found, now)
        self.passes += 1
        if len(names) == BATCH:
            return 0.0
        earliest = await self._schedules.earliest_ms()
        if earliest is None:
            return self._interval_s
        return min(self._interval_s, max(0.0, (earliest - now) / 1000))

    async def _tick(self, found: StoredSchedule, now: int) -> None:
        """Makes the jobs of one schedule's due ticks, then moves its cursor to `now`."""
        try:
            read = definition.read(svc.Schedule.FromString(found.definition))
        except FieldViolation as error:  # stored by a version that allowed it: skip its ticks
            logger.error("schedule %s cannot be read (%s); its ticks are skipped", found.name, error.message)
            await self._schedules.fire(found.name, found.state.version, now, None, None)
            return
        if read.paused:
            return  # paused meanwhile: the pause took it out of the due set
        made = None
        ticks = read.ticks_due(found.state.cursor_ms, now)
        if ticks:
            requests = []
            for tick in ticks:
                request = svc.EnqueueRequest()
                request.CopyFrom(read.template)
                request.idempotency_key = idempotency_key(read.name, tick)
                requests.append((tick, request))
            try:
                job_ids = await self._enqueue(requests)
            except QueueLimitReached as error:
                # Tried again a sweep interval later: left due, it would make every pass at once.
                logger.warning("schedule %s: %s; trying again later", read.name, error.message)
                await self._schedules.postpone(read.name, now + int(self._interval_s * 1000))
                return
            except FieldViolation as error:  # the server's limits changed since it was created
                logger.error("schedule %s makes jobs this server refuses (%s)", read.name, error.message)
                job_ids = []
            if job_ids:
                made = (ticks[-1], job_ids[-1])
        next_ms = read.timing.next_after(now)
        outcome = await self._schedules.fire(read.name, found.state.version, now, next_ms, made)
        if ticks and outcome == "ok":
            logger.debug("schedule %s made %d job(s), the last %s", read.name, len(ticks), made)
