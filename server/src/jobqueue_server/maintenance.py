"""Background work: promote due jobs, reap expired leases, trim finished jobs.

One pass sweeps every known queue. Passes run at the earliest due time or lease deadline
any sweep reported (or that the servicer announced), and at least every sweep interval as
a safety net; every server runs this loop, and the scripts make concurrent passes safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobqueue_server.clock import Clock
from jobqueue_server.errors import StoreFull, StoreUnavailable
from jobqueue_server.store import Store
from jobqueue_server.store.signals import QueueSignals

logger = logging.getLogger(__name__)

# Every this many passes (about a minute at the default interval), a pass looks at every watched
# queue for ready jobs, not only at those subscribed just now. A net under a net: a signal is lost
# only before its subscription took effect (the recent ones are looked at every pass) or across a
# reconnect (which wakes every waiter); and one EXISTS per queue adds up with thousands idle.
FULL_LOOK_EVERY = 60


class Maintenance:
    """The sweep loop of one server."""

    def __init__(
        self, store: Store, signals: QueueSignals, interval_s: float, clock: Clock | None = None
    ) -> None:
        """`clock` plans the passes (the local clock); by default the store's."""
        self._store = store
        self._clock = clock or store.clock
        self._signals = signals
        self._interval_ms = int(interval_s * 1000)
        self._next_ms = 0  # local clock; 0: sweep at once
        self.passes = 0  # passes run so far (tests wait on it)
        self._wake = asyncio.Event()
        # Redis time minus local time, learnt from each pass, to turn due times into sleeps.
        self._skew_ms = 0

    def wake_at(self, redis_ms: int) -> None:
        """Asks for a pass no later than `redis_ms` (a due time in Redis's clock)."""
        local = redis_ms - self._skew_ms
        if local < self._next_ms:
            self._next_ms = local
            self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a wake_at during it must not be lost
            if self._clock.now_ms() >= self._next_ms:
                await self.sweep_once()
            delay_s = max(0.0, (self._next_ms - self._clock.now_ms()) / 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay_s)

    async def sweep_once(self) -> None:
        """One pass over every known queue; plans the next one.

        Cheap reads find the queues with work due (store/due.py); only those are swept. Then
        the streams of this server waiting on a queue that has ready jobs are woken: a wake-up
        signal published before a subscription took effect is missed, and this makes it good
        for the whole server, rather than every idle stream polling its queues.
        `wake_at` calls made while the pass runs lower `_next_ms` further; they are kept.
        """
        now = self._clock.now_ms()
        self._next_ms = now + self._interval_ms
        try:
            redis_now = await self._store.now_ms()
            self._skew_ms = redis_now - self._clock.now_ms()
            due = await self._store.due(await self._store.known_queues(), redis_now)
            for queue, work in due.items():
                if work.next_ms is not None:
                    self._next_ms = min(self._next_ms, work.next_ms - self._skew_ms)
                if work.now:
                    await self._sweep(queue, now)
            for queue in await self._store.ready_queues(self._queues_to_look_at()):
                self._signals.notify(queue)
            self.passes += 1
        except (StoreUnavailable, StoreFull) as exc:
            # Out of memory, requeueing an expired lease is a write too: try again next pass.
            logger.warning("maintenance pass failed: %s", exc)
        except Exception:
            # The loop must outlive any one pass, or leases stop being reaped on this server.
            logger.exception("maintenance pass failed")

    def _queues_to_look_at(self) -> list[str]:
        """Watched queues that may hold jobs whose signal was missed: those subscribed just now
        (a signal published before the subscription took effect is lost) and, every
        FULL_LOOK_EVERY passes, all of them (whatever else may lose one)."""
        if self.passes % FULL_LOOK_EVERY == 0:
            self._signals.recently_subscribed()  # covered by this full look
            return self._signals.watched()
        return self._signals.recently_subscribed()

    async def _sweep(self, queue: str, pass_started_ms: int) -> None:
        result = await self._store.sweep(queue)
        if result.promoted or result.requeued:
            self._signals.notify(queue)
        if result.next_due_ms is not None:
            self._next_ms = min(self._next_ms, result.next_due_ms - self._skew_ms)
        if result.hit_batch_limit:  # more to do than one pass takes: go again at once
            self._next_ms = pass_started_ms

    @property
    def next_sweep_ms(self) -> int:
        """When the next pass is planned, in the local clock (0: at once)."""
        return self._next_ms
