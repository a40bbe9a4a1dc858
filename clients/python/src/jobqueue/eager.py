"""Starter: starts the handlers of a delivery at once, giving a task only to those that wait.

A task per job costs more than a no-op handler (about 5 µs on a small VM, on Python 3.11).
Python 3.12's eager tasks run a coroutine's first step at once and schedule nothing when it
finishes there; on 3.12+ the Starter uses them. On 3.11 it does the same with one task per
delivery: the task runs each job's first step in turn, and when one waits, the rest of the
delivery goes to a new task and this one drives the waiting job to its end. So
``asyncio.current_task()``, ``asyncio.timeout`` and ``TaskGroup`` see one task for a job from its
first step to its last, and each job runs in its own copy of the context, as in a task of its
own. The one difference from a task per job: jobs that finished at once ran in the task that
then runs the next job that waits (a handler that kept ``current_task()`` after it returned
would see that task run another job).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
JobCoroutine = Coroutine[Any, Any, None]


class Starter(Generic[T]):
    """Runs ``run(item)`` for each item of a delivery; ``waiting(item, task)`` is called for each
    one that did not finish in its first step, with the task that now runs it."""

    def __init__(
        self, run: Callable[[T], JobCoroutine], waiting: Callable[[T, asyncio.Task[None]], None]
    ) -> None:
        self._run = run
        self._waiting = waiting
        #: Tasks with jobs not started yet (3.11): a stop waits for them or cancels them.
        self.pending: set[asyncio.Task[None]] = set()

    if sys.version_info >= (3, 12):

        def start(self, items: list[T]) -> None:
            loop = asyncio.get_running_loop()
            for item in items:
                task = asyncio.Task(self._run(item), loop=loop, eager_start=True)
                if not task.done():
                    self._waiting(item, task)

    else:

        def start(self, items: list[T]) -> None:
            self._spawn(items, 0)

    def _spawn(self, items: list[T], first: int) -> None:
        task = asyncio.get_running_loop().create_task(self._start_from(items, first))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _start_from(self, items: list[T], first: int) -> None:
        for index in range(first, len(items)):
            context = contextvars.copy_context()
            coroutine = self._run(items[index])
            try:
                yielded = context.run(coroutine.send, None)
            except (StopIteration, asyncio.CancelledError):  # finished (or gave up) at once
                continue
            # It waits: the rest go to a new task, and this task becomes the job's.
            if index + 1 < len(items):
                self._spawn(items, index + 1)
            task = asyncio.current_task()
            assert task is not None
            self.pending.discard(task)
            self._waiting(items[index], task)
            await _resume(context, coroutine, yielded)
            return


@types.coroutine
def _resume(context: contextvars.Context, coroutine: JobCoroutine, yielded: Any) -> Generator[Any, Any, None]:
    """Drives `coroutine`, whose first step already ran and yielded `yielded`, to its end: what
    it yields goes to the task (which waits on it), what the task sends or throws goes back in."""
    while True:
        try:
            sent = yield yielded
        except BaseException as error:  # a cancellation, thrown into the job: it decides
            try:
                yielded = context.run(coroutine.throw, error)
            except StopIteration:
                return
        else:
            try:
                yielded = context.run(coroutine.send, sent)
            except StopIteration:
                return
