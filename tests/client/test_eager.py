"""The Starter runs each job's first step at once and gives a task only to jobs that wait;
a job keeps one task from its first step to its last (eager.py)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from jobqueue.eager import Starter

TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("tenant", default="none")


class Jobs:
    """A Starter over named jobs, recording which ones waited and in which task."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.waited: dict[str, asyncio.Task[None]] = {}
        self.starter: Starter[str] = Starter(self.run, self.waiting)
        self.gates: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, list[asyncio.Task[None] | None]] = {}

    async def run(self, name: str) -> None:
        self.tasks[name] = [asyncio.current_task()]
        self.log.append(f"{name} starts with {TENANT.get()}")
        TENANT.set(name)
        if name in self.gates:
            await self.gates[name].wait()
            self.tasks[name].append(asyncio.current_task())
        self.log.append(f"{name} ends with {TENANT.get()}")

    def waiting(self, name: str, task: asyncio.Task[None]) -> None:
        self.waited[name] = task

    async def settle(self) -> None:
        while self.starter.pending or any(not task.done() for task in self.waited.values()):
            await asyncio.sleep(0)


async def test_jobs_that_finish_at_once_get_no_task_of_their_own() -> None:
    jobs = Jobs()

    jobs.starter.start(["a", "b", "c"])
    await jobs.settle()

    assert jobs.waited == {}
    assert jobs.log == [
        line for name in "abc" for line in (f"{name} starts with none", f"{name} ends with {name}")
    ]


async def test_a_job_that_waits_keeps_one_task_and_the_next_ones_start_meanwhile() -> None:
    jobs = Jobs()
    jobs.gates["b"] = asyncio.Event()

    jobs.starter.start(["a", "b", "c"])
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert jobs.log == [
        "a starts with none", "a ends with a", "b starts with none", "c starts with none", "c ends with c",
    ]  # fmt: skip
    assert list(jobs.waited) == ["b"]
    jobs.gates["b"].set()
    await jobs.settle()
    first, after = jobs.tasks["b"]
    assert first is after is jobs.waited["b"]
    assert jobs.log[-1] == "b ends with b"  # its own context, kept across the wait


async def test_a_timeout_in_a_first_step_cancels_only_its_own_job() -> None:
    outcomes: list[str] = []

    async def run(name: str) -> None:
        try:
            if name == "stuck":
                async with asyncio.timeout(0.01):
                    await asyncio.Event().wait()
            outcomes.append(f"{name} done")
        except TimeoutError:
            outcomes.append(f"{name} timed out")

    waited: list[asyncio.Task[None]] = []
    starter: Starter[str] = Starter(run, lambda name, task: waited.append(task))
    starter.start(["first", "stuck", "last"])
    await asyncio.wait_for(asyncio.gather(*waited, *starter.pending), 5)

    assert sorted(outcomes) == ["first done", "last done", "stuck timed out"]


async def test_cancelling_a_waiting_jobs_task_cancels_that_job_alone() -> None:
    jobs = Jobs()
    jobs.gates["b"] = asyncio.Event()
    jobs.gates["c"] = asyncio.Event()
    jobs.starter.start(["b", "c"])
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    jobs.waited["b"].cancel()
    with pytest.raises(asyncio.CancelledError):
        await jobs.waited["b"]
    jobs.gates["c"].set()
    await jobs.settle()

    assert "b ends with b" not in jobs.log and jobs.log[-1] == "c ends with c"
