"""Unary Enqueue calls written to Redis together: a group commit.

A call that finds the writer idle for a while goes at once (then enqueue-to-start is what counts).
Calls that arrive while a store call is under way go in the next one; before it, the writer lets
the event loop run a few turns, for as long as more calls keep joining: calls that the server has
received but not yet handled then go in the same call. Under load one script call carries many
jobs, and a store call costs the server far more than a job does (a write, a read, two
context switches with Redis: about a third of a unary call's CPU when each job went alone).
Each caller gets its own outcome, or the error of the store call that carried its job.
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


@dataclass
class _Waiting:
    jobs: list[NewJob] = field(default_factory=list)
    futures: list[asyncio.Future[EnqueueOutcome]] = field(default_factory=list)
    writing: bool = False
    last_write_s: float = -math.inf  # loop time the last store call ended
    writer: asyncio.Task[None] | None = None  # the task writing, held so it is not collected


class GroupCommit:
    """Enqueues single jobs through the store, many per script call under load."""

    def __init__(self, write: Callable[[list[NewJob], Durability], Awaitable[EnqueueResult]]) -> None:
        """`write(jobs, durability)` is the store call (with its wake-ups and timers)."""
        self._write_jobs = write
        self._levels: dict[Durability, _Waiting] = {}

    async def enqueue(self, job: NewJob, durability: Durability) -> EnqueueOutcome:
        loop = asyncio.get_running_loop()
        waiting = self._levels.setdefault(durability, _Waiting())
        if not waiting.writing and loop.time() - waiting.last_write_s >= IDLE_AFTER_S:
            return await self._write_alone(job, durability, waiting)
        future: asyncio.Future[EnqueueOutcome] = loop.create_future()
        waiting.jobs.append(job)
        waiting.futures.append(future)
        if not waiting.writing:
            waiting.writing = True
            waiting.writer = loop.create_task(self._write(durability, waiting))
        return await future

    async def _write_alone(self, job: NewJob, durability: Durability, waiting: _Waiting) -> EnqueueOutcome:
        """The writer was idle: the caller writes its job itself, at once (no task to start, no
        turns to gather); calls that arrive meanwhile wait for the next store call."""
        waiting.writing = True
        try:
            result = await self._write_jobs([job], durability)
        finally:
            loop = asyncio.get_running_loop()
            waiting.last_write_s = loop.time()
            if waiting.jobs:
                waiting.writer = loop.create_task(self._write(durability, waiting))
            else:
                waiting.writing = False
        return result.outcomes[0]

    async def _write(self, durability: Durability, waiting: _Waiting) -> None:
        """Writes what waits, call after call, until nothing does."""
        try:
            loop = asyncio.get_running_loop()
            while waiting.jobs:
                await _gather(waiting)
                jobs, futures = _take(waiting)
                if not jobs:
                    continue
                try:
                    result = await self._write_jobs(jobs, durability)
                except Exception as error:  # every caller of this call gets the store's error
                    for future in futures:
                        if not future.done():
                            future.set_exception(error)
                    continue
                finally:
                    waiting.last_write_s = loop.time()
                for future, outcome in zip(futures, result.outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            waiting.writing = False


async def _gather(waiting: _Waiting) -> None:
    """Lets the loop run while calls keep joining `waiting` (see the module docstring)."""
    quiet, seen = 0, len(waiting.jobs)
    for _ in range(GATHER_MAX_TURNS):
        if seen >= MAX_JOBS_PER_CALL:
            return
        await asyncio.sleep(0)
        if len(waiting.jobs) == seen:
            quiet += 1
            if quiet >= GATHER_QUIET_TURNS:
                return
        else:
            quiet, seen = 0, len(waiting.jobs)


def _take(waiting: _Waiting) -> tuple[list[NewJob], list[asyncio.Future[EnqueueOutcome]]]:
    """The next call's jobs: those whose caller still waits, up to the bounds."""
    jobs: list[NewJob] = []
    futures: list[asyncio.Future[EnqueueOutcome]] = []
    size = 0
    taken = 0
    for job, future in zip(waiting.jobs, waiting.futures, strict=True):
        if jobs and (len(jobs) >= MAX_JOBS_PER_CALL or size + len(job.wire) > MAX_BYTES_PER_CALL):
            break
        taken += 1
        if future.done():  # the caller went away before its job was written: drop it
            continue
        jobs.append(job)
        futures.append(future)
        size += len(job.wire)
    del waiting.jobs[:taken], waiting.futures[:taken]
    return jobs, futures
