"""Background work: promote due jobs, reap expired leases, trim finished jobs, and drop queues
that stayed empty from the registry.

A pass looks only at the queues with work due by now: the due times it read before, and those
the servicer announced (a delayed job, a fail's backoff, a lease deadline). Every
FULL_LOOK_EVERY passes it reads every registered queue's due times, which finds the work other
servers made (and left behind when they died) and the queues that hold no job. So a pass costs
reads in proportion to the queues with due work, and the whole registry is read every ten
seconds. Passes run at the earliest due time, and at least every sweep interval; every server
runs this loop, and the scripts make concurrent passes safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobqueue_server.clock import Clock
from jobqueue_server.errors import StoreFull, StoreUnavailable
from jobqueue_server.observability.metrics import NO_METRICS, JobMetrics
from jobqueue_server.resolver import DependencyResolver
from jobqueue_server.store import Store
from jobqueue_server.store.due import Due
from jobqueue_server.store.signals import QueueSignals

logger = logging.getLogger(__name__)

# Every this many passes (ten seconds at the default interval), a pass reads the due times of
# every registered queue, not only of those known to have work due.
FULL_LOOK_EVERY = 10
# Every this many passes (about a minute at the default interval), a pass looks at every watched
# queue for ready jobs, not only at those subscribed just now. A net under a net: a signal is lost
# only before its subscription took effect (the recent ones are looked at every pass) or across a
# reconnect (which wakes every waiter); and one EXISTS per queue adds up with thousands idle.
FULL_READY_LOOK_EVERY = 60


class Maintenance:
    """The sweep loop of one server."""

    def __init__(
        self,
        store: Store,
        signals: QueueSignals,
        interval_s: float,
        clock: Clock | None = None,
        queue_idle_s: float = 3600.0,
        resolver: DependencyResolver | None = None,
        metrics: JobMetrics = NO_METRICS,
    ) -> None:
        """`clock` plans the passes (the local clock); by default the store's. A queue seen
        holding no job for `queue_idle_s` is dropped from the registry. `resolver` takes over
        the dependency work a server left half done (store/dependencies.py)."""
        self._resolver = resolver
        self._metrics = metrics
        self._store = store
        self._clock = clock or store.clock
        self._signals = signals
        self._interval_ms = int(interval_s * 1000)
        self._queue_idle_ms = int(queue_idle_s * 1000)
        # Queue -> when (Redis's clock) it next has work due, as last read or announced.
        self._due_at: dict[str, int] = {}
        # Queue -> when (Redis's clock) a full look first found it holding no job.
        self._empty_since: dict[str, int] = {}
        self._next_ms = 0  # local clock; 0: sweep at once
        self.passes = 0  # passes run so far (tests wait on it)
        self._wake = asyncio.Event()
        self._full_look_next = False
        # Redis time minus local time, learnt from each pass, to turn due times into sleeps.
        self._skew_ms = 0

    def wake_at(self, redis_ms: int, queue: str | None = None) -> None:
        """Asks for a pass no later than `redis_ms` (a due time in Redis's clock) that looks at
        `queue` (None: at every queue: the next pass is a full look)."""
        if queue is None:
            self._full_look_next = True
        else:
            self._due_at[queue] = min(redis_ms, self._due_at.get(queue, redis_ms))
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
        """One pass over the queues with work due (every queue, every FULL_LOOK_EVERY passes);
        plans the next one.

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
            for queue in await self._store.partitions.refresh():  # partitions other servers added:
                self._signals.notify(queue)  # the streams on the queue watch them from now on
            full = self.passes % FULL_LOOK_EVERY == 0 or self._full_look_next
            self._full_look_next = False
            if full:
                queues = await self._store.known_queues()
            else:
                queues = [queue for queue, at in self._due_at.items() if at <= redis_now]
            due = await self._store.due(queues, redis_now, sizes=full)
            for queue, work in due.items():
                self._plan(queue, work.next_ms)
                if work.now:
                    await self._sweep(queue, now, redis_now)
            if full:
                await self._forget_idle_queues(due, redis_now)
                await self._resume_dependencies(queues, redis_now)
            for queue in await self._store.ready_queues(self._queues_to_look_at()):
                self._signals.notify(queue)
            self.passes += 1
        except (StoreUnavailable, StoreFull) as exc:
            # Out of memory, requeueing an expired lease is a write too: try again next pass.
            self._full_look_next = True
            logger.warning("maintenance pass failed: %s", exc)
        except Exception:
            # The loop must outlive any one pass, or leases stop being reaped on this server.
            self._full_look_next = True
            logger.exception("maintenance pass failed")

    def _plan(self, queue: str, due_ms: int | None) -> None:
        """Records when `queue` next has work due (None: none known) and plans a pass for it."""
        if due_ms is None:
            self._due_at.pop(queue, None)
            return
        self._due_at[queue] = due_ms
        self._next_ms = min(self._next_ms, due_ms - self._skew_ms)

    async def _forget_idle_queues(self, looked: dict[str, Due], redis_now: int) -> None:
        """Drops from the registry the queues every full look found empty for queue_idle_s."""
        self._empty_since = {
            queue: self._empty_since.get(queue, redis_now) for queue, work in looked.items() if work.empty
        }
        idle = [q for q, since in self._empty_since.items() if redis_now - since >= self._queue_idle_ms]
        for queue in idle:
            if await self._store.forget_queue(queue):
                logger.info(
                    "queue %s held no job for %.0f s: dropped from the registry",
                    queue,
                    self._queue_idle_ms / 1000,
                )
            del self._empty_since[queue]

    async def _resume_dependencies(self, queues: list[str], redis_now: int) -> None:
        """Resolves settled jobs whose resolution did not run (a lost message, a server that
        died in it) and attaches waiting jobs whose enqueue's server died before it did."""
        if self._resolver is None:
            return
        settled, attaching = await self._store.dependencies.pending_queues(queues, redis_now)
        for queue in settled:
            self._resolver.request(queue)
        for queue in attaching:
            for other, at in (await self._store.dependencies.reattach(queue, redis_now)).items():
                self.wake_at(at, other)

    def _queues_to_look_at(self) -> list[str]:
        """Watched queues that may hold jobs whose signal was missed: those subscribed just now
        (a signal published before the subscription took effect is lost) and, every
        FULL_READY_LOOK_EVERY passes, all of them (whatever else may lose one)."""
        if self.passes % FULL_READY_LOOK_EVERY == 0:
            self._signals.recently_subscribed()  # covered by this full look
            return self._signals.watched()
        return self._signals.recently_subscribed()

    async def _sweep(self, queue: str, pass_started_ms: int, redis_now: int) -> None:
        result = await self._store.sweep(queue)
        self._metrics.leases_expired(queue, result.requeued, result.dead)
        if result.promoted or result.requeued:
            self._signals.notify(queue)
        if result.next_due_ms is not None:
            self._plan(queue, min(result.next_due_ms, self._due_at.get(queue, result.next_due_ms)))
        if result.hit_batch_limit:  # more to do than one pass takes: go again at once
            self._due_at[queue] = redis_now
            self._next_ms = pass_started_ms

    @property
    def next_sweep_ms(self) -> int:
        """When the next pass is planned, in the local clock (0: at once)."""
        return self._next_ms
