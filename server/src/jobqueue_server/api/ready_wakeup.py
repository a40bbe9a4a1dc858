"""Waking this server's Lease streams when an enqueue makes jobs ready.

The hot-path scripts share one Redis connection, and Redis runs one connection's commands in
the order they came (store/pipeline.py). So a stream woken as soon as the enqueue script is
written sends its lease script after it, and the lease finds the jobs: the wake-up does not wait
for the enqueue's reply, which takes a round trip off enqueue-to-start at idle. A queue whose
script went on a connection of its own (a fsynced write) is woken once the reply is in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from jobqueue_server.store import NewJob


class ReadyWakeup:
    """The wake-ups of one store call: `sent` as its script calls go out, `finish` after."""

    def __init__(self, jobs: Iterable[NewJob], notify: Callable[[str], None]) -> None:
        # Queues that get a job ready now (not scheduled for later), and those woken so far.
        self._ready = {job.queue for job in jobs if job.due_ms is None and job.delay_ms == 0}
        self._woken: set[str] = set()
        self._notify = notify

    def sent(self, queue: str) -> None:
        """The queue's script call is written on the shared connection. It may be written twice:
        a script Redis does not know (after a restart) is refused, loaded and sent again, and a
        lease written behind the refused call ran before the jobs were there: wake it again."""
        if queue in self._ready:
            self._woken.add(queue)
            self._notify(queue)

    def finish(self) -> None:
        """The store call is over: wakes the queues not woken yet."""
        for queue in self._ready - self._woken:
            self._notify(queue)
        self._ready.clear()
