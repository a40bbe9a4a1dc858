"""Which jobs WatchJob streams watch, on this server and on the others, and their wake-ups.

A WatchJob stream announces its job on the watch channel (`w|<server>|<job id>`, again every
ANNOUNCE_EVERY_S while it lasts); every other server remembers the jobs watched elsewhere for
twice that. When a server changes a job (a lease, an ack or fail, progress, a cancel, a stop)
it wakes its own watchers of it at once and, when a server elsewhere watches it, publishes
`c|<server>|<job id>` so that server's wake too. Nothing is published for jobs nobody watches, so the
hot paths pay a dictionary lookup per job. Changes no server announces (a maintenance pass
promoting or requeueing) are seen by the stream's own re-read every sweep interval.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable

logger = logging.getLogger(__name__)

ANNOUNCE_EVERY_S = 30.0
# Jobs watched elsewhere are forgotten this long after their last announcement.
_REMEMBER_S = 2 * ANNOUNCE_EVERY_S
# Bounds the jobs remembered as watched elsewhere: past it, the oldest are dropped (their
# watchers then see changes by their own re-reads).
_MAX_REMOTE = 100_000


class JobWatches:
    """This server's WatchJob streams and the jobs other servers watch."""

    def __init__(self, publish: Callable[[str, str], Awaitable[None]], channel: str) -> None:
        """`publish(channel, message)` sends on Redis pub/sub; `channel` is the watch channel."""
        self._publish_on = publish
        self.channel = channel
        self._local: dict[str, set[asyncio.Event]] = {}
        self._remote: dict[str, float] = {}  # job id -> when to forget it (monotonic)
        self._publishing: set[asyncio.Task[None]] = set()
        self._origin = secrets.token_hex(6)  # tells this server's messages from the others'

    def watch(self, job_id: str) -> asyncio.Event:
        """An event set at each change of `job_id` seen here; `unwatch` it after."""
        event = asyncio.Event()
        self._local.setdefault(job_id, set()).add(event)
        self.announce(job_id)
        return event

    def announce(self, job_id: str) -> None:
        """Tells the other servers again that `job_id` is watched (every ANNOUNCE_EVERY_S)."""
        self._publish(f"w|{self._origin}|{job_id}")

    def unwatch(self, job_id: str, event: asyncio.Event) -> None:
        events = self._local.get(job_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._local[job_id]

    def changed(self, job_ids: Iterable[str]) -> None:
        """This server changed these jobs: wakes their watchers here and elsewhere."""
        if not self._local and not self._remote:
            return
        now = time.monotonic()
        for job_id in job_ids:
            self._wake(job_id)
            until = self._remote.get(job_id)
            if until is not None:
                if until > now:
                    self._publish(f"c|{self._origin}|{job_id}")
                else:
                    del self._remote[job_id]

    def on_message(self, data: bytes) -> None:
        """A message of the watch channel, from any server (this one too)."""
        kind, origin, job_id = [*data.decode().split("|", 2), "", ""][:3]
        if origin == self._origin:
            return
        if kind == "c":
            self._wake(job_id)
        elif kind == "w":
            if job_id not in self._remote and len(self._remote) >= _MAX_REMOTE:
                self._remote.pop(next(iter(self._remote)))
            self._remote[job_id] = time.monotonic() + _REMEMBER_S

    def _wake(self, job_id: str) -> None:
        for event in self._local.get(job_id, ()):
            event.set()

    def _publish(self, message: str) -> None:
        task = asyncio.ensure_future(self._send(message))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _send(self, message: str) -> None:
        try:
            await self._publish_on(self.channel, message)
        except Exception as error:  # a watcher's re-read makes good a lost announcement
            logger.debug("could not publish %r: %s", message, error)
