"""Runs the resolution of a queue's settled jobs (store/dependencies.py) when the dependencies
channel names the queue, and when the maintenance pass finds some left behind.

One task per queue at a time: a message for a queue being resolved asks for one more round
after it, so an entry settled during a round is not left waiting for the maintenance pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from jobqueue_server.errors import StoreFull, StoreUnavailable
from jobqueue_server.ids import is_stored_queue
from jobqueue_server.store import Store

logger = logging.getLogger(__name__)


class DependencyResolver:
    def __init__(self, store: Store, wake_at: Callable[[int, str], None]) -> None:
        """`wake_at(due ms, queue)`: a released job is SCHEDULED on `queue` until then."""
        self._store = store
        self._wake_at = wake_at
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def on_message(self, data: bytes) -> None:
        """A message of the dependencies channel: the name of a queue with settled jobs."""
        queue = data.decode(errors="replace")
        if is_stored_queue(queue):
            self.request(queue)

    def request(self, queue: str) -> None:
        if queue in self._running:
            self._again.add(queue)
            return
        self._running[queue] = asyncio.create_task(self._run(queue), name=f"resolve {queue}")

    async def _run(self, queue: str) -> None:
        try:
            while True:
                self._again.discard(queue)
                due = await self._store.dependencies.resolve_settled(queue)
                for other, at in due.items():
                    self._wake_at(at, other)
                if queue not in self._again:
                    return
        except (StoreUnavailable, StoreFull) as exc:
            logger.warning("resolving the dependencies of queue %s failed: %s", queue, exc)
        except Exception:  # the maintenance pass tries again
            logger.exception("resolving the dependencies of queue %s failed", queue)
        finally:
            del self._running[queue]

    async def idle(self) -> None:
        """Returns once no resolution runs (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    def close(self) -> None:
        for task in self._running.values():
            task.cancel()
