"""Unary Enqueue calls and EnqueueStream requests written to Redis together: a group commit.

A call that finds the writer idle for a while goes at once (then enqueue-to-start is what counts).
Calls that arrive while a store call is under way go in the next one; before it, the writer lets
the event loop run a few turns, for as long as more calls keep joining: calls that the server has
received but not yet handled then go in the same call. Under load one script call carries many
jobs, and a store call costs the server far more than a job does (a write, a read, two
context switches with Redis: about a third of a unary call's CPU when each job went alone).
Each caller gets its own outcomes, or the error of the store call that carried its jobs; the
jobs of one caller always go in one store call.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from jobqueue_server.store import Durability, EnqueueOutcome, EnqueueResult, NewJob

# Most jobs, and bytes of their wire, one store call takes from the waiting calls.
MAX_JOBS_PER_CALL = 1000
MAX_BYTES_PER_CALL = 4 * 1024 * 1024
# Gathering stops after this many turns of the loop in a row brought no new call, or after
# GATHER_MAX_TURNS turns in all (measured with 64 calls in flight: 8 gathers about 7 jobs per
# store call, and halves the server's CPU per call next to writing each job alone).
GATHER_QUIET_TURNS = 8
GATHER_MAX_TURNS = 64
# A writer with no store call ended this recently is idle: its first call does not gather (calls
# sent together reach the loop over several turns, so each would go alone if every call that
# finds nothing being written went at once).
IDLE_AFTER_S = 0.002


Outcomes = list[EnqueueOutcome]


@dataclass
class _Waiting:
    entries: list[list[NewJob]] = field(default_factory=list)  # each caller's jobs
    futures: list[asyncio.Future[Outcomes]] = field(default_factory=list)
    jobs: int = 0  # in all the entries
    writing: bool = False
    last_write_s: float = -math.inf  # loop time the last store call ended
    writer: asyncio.Task[None] | None = None  # the task writing, held so it is not collected


class GroupCommit:
    """Enqueues the jobs of many callers through the store, in one script call under load."""

    def __init__(self, write: Callable[[list[NewJob], Durability], Awaitable[EnqueueResult]]) -> None:
        """`write(jobs, durability)` is the store call (with its wake-ups and timers)."""
        self._write_jobs = write
        self._levels: dict[Durability, _Waiting] = {}

    async def enqueue(self, job: NewJob, durability: Durability) -> EnqueueOutcome:
        (outcome,) = await self.enqueue_many([job], durability)
        return outcome

    async def enqueue_many(self, jobs: list[NewJob], durability: Durability) -> Outcomes:
        """Writes `jobs` in one store call, with other callers' jobs under load."""
        loop = asyncio.get_running_loop()
        waiting = self._levels.setdefault(durability, _Waiting())
        if not waiting.writing and loop.time() - waiting.last_write_s >= IDLE_AFTER_S:
            return await self._write_alone(jobs, durability, waiting)
        future: asyncio.Future[Outcomes] = loop.create_future()
        waiting.entries.append(jobs)
        waiting.futures.append(future)
        waiting.jobs += len(jobs)
        if not waiting.writing:
            waiting.writing = True
            waiting.writer = loop.create_task(self._write(durability, waiting))
        return await future

    async def _write_alone(self, jobs: list[NewJob], durability: Durability, waiting: _Waiting) -> Outcomes:
        """The writer was idle: the caller writes its jobs itself, at once (no task to start, no
        turns to gather); calls that arrive meanwhile wait for the next store call."""
        waiting.writing = True
        try:
            result = await self._write_jobs(jobs, durability)
        finally:
            loop = asyncio.get_running_loop()
            waiting.last_write_s = loop.time()
            if waiting.entries:
                waiting.writer = loop.create_task(self._write(durability, waiting))
            else:
                waiting.writing = False
        return result.outcomes

    async def _write(self, durability: Durability, waiting: _Waiting) -> None:
        """Writes what waits, call after call, until nothing does."""
        try:
            loop = asyncio.get_running_loop()
            while waiting.entries:
                await _gather(waiting)
                entries, futures = _take(waiting)
                if not entries:
                    continue
                try:
                    result = await self._write_jobs([job for jobs in entries for job in jobs], durability)
                except Exception as error:  # every caller of this call gets the store's error
                    for future in futures:
                        if not future.done():
                            future.set_exception(error)
                    continue
                finally:
                    waiting.last_write_s = loop.time()
                start = 0
                for future, jobs in zip(futures, entries, strict=True):
                    if not future.done():
                        future.set_result(result.outcomes[start : start + len(jobs)])
                    start += len(jobs)
        finally:
            waiting.writing = False


async def _gather(waiting: _Waiting) -> None:
    """Lets the loop run while calls keep joining `waiting` (see the module docstring)."""
    quiet, seen = 0, waiting.jobs
    for _ in range(GATHER_MAX_TURNS):
        if seen >= MAX_JOBS_PER_CALL:
            return
        await asyncio.sleep(0)
        if waiting.jobs == seen:
            quiet += 1
            if quiet >= GATHER_QUIET_TURNS:
                return
        else:
            quiet, seen = 0, waiting.jobs


def _take(waiting: _Waiting) -> tuple[list[list[NewJob]], list[asyncio.Future[Outcomes]]]:
    """The next call's entries: those whose caller still waits, up to the bounds (a first
    entry larger than them goes alone)."""
    entries: list[list[NewJob]] = []
    futures: list[asyncio.Future[Outcomes]] = []
    count = size = taken = 0
    for jobs, future in zip(waiting.entries, waiting.futures, strict=True):
        entry_size = sum(len(job.wire) for job in jobs)
        if entries and (count + len(jobs) > MAX_JOBS_PER_CALL or size + entry_size > MAX_BYTES_PER_CALL):
            break
        taken += 1
        waiting.jobs -= len(jobs)
        if future.done():  # the caller went away before its jobs were written: drop them
            continue
        entries.append(jobs)
        futures.append(future)
        count += len(jobs)
        size += entry_size
    del waiting.entries[:taken], waiting.futures[:taken]
    return entries, futures
