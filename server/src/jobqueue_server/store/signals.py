"""Wake-ups without polling: scripts PUBLISH on `<prefix>:{<queue>}:signal` when jobs
become ready; one pub/sub connection per server turns those into local events.

On one Redis (or behind Sentinel), plain pub/sub. On a cluster, sharded pub/sub: the scripts
SPUBLISH and the servers SSUBSCRIBE on each channel's primary (shard_subscriptions.py), so a
wake-up costs only its queue's node, where a plain one costs every node about 1.8 µs
(bench/cluster_wakeups.py, docs/scaling.md). The channel names carry the queue's hash tag.

A second connection listens on the channels given to `listen` (the stops channel, where a
cancel or a timeout says which worker must stop which job; the watch channel of WatchJob): the
first one must stay free to subscribe the moment a stream starts watching a queue.

Signals can be missed (a reconnect, a subscription still being set up): after a reconnect
every waiter is woken, and the maintenance pass looks at the queues subscribed recently (and now
and then at every watched queue), so this is the fast path, not the only one. Idle, the listener
only waits on its connection: the subscriptions are brought in step only after a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from jobqueue_server.store.cluster import is_cluster, pubsub_of, refresh_slot_map
from jobqueue_server.store.keys import QueueKeys
from jobqueue_server.store.shard_subscriptions import ShardSubscriptions

logger = logging.getLogger(__name__)

_RESUBSCRIBE_DELAY_S = 0.5
# How long one read waits before the loop applies subscription changes.
_READ_TIMEOUT_S = 0.05
# A read of the stop and watch channels, which never change: only a bound on one call.
_IDLE_READ_S = 30.0
# A queue nobody has watched for this long is unsubscribed (a busy stream stops watching for
# an instant between two lease calls: that must not make it resubscribe).
_UNSUBSCRIBE_AFTER_S = 10.0


class QueueSignals:
    """Local events set whenever a watched queue may have ready jobs."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        unsubscribe_after_s: float = _UNSUBSCRIBE_AFTER_S,
        own_message: str | None = None,
    ) -> None:
        """`own_message`: the wake-up message of this server's own enqueues (Store.signal_origin),
        skipped here: the server woke its streams when it wrote them, and a second wake-up would
        cost an idle stream an empty lease call per job."""
        self._redis = redis
        self._own_message = None if own_message is None else own_message.encode()
        self._prefix = key_prefix
        self._unsubscribe_after_s = unsubscribe_after_s
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._callbacks: dict[asyncio.Event, Callable[[str], object]] = {}
        self._channels: dict[bytes, str] = {}
        # Set when the watched queues changed: the listener then brings its subscriptions in step.
        self._changed = asyncio.Event()
        self._unwatched_since: dict[str, float] = {}
        # Queues subscribed since the last two `recently_subscribed` calls (see there).
        self._fresh: set[str] = set()
        self._fresh_before: set[str] = set()
        # On a cluster: the sharded subscriptions failed, so the slot map may be out of date.
        self._stale_map = False
        # Channels always listened to, each with what handles its messages (`listen`).
        self._handlers: dict[bytes, Callable[[bytes], None]] = {}

    def listen(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Hands every message of `channel` to `handler` (from the next connection on: call it
        before `run`)."""
        self._handlers[channel.encode()] = handler

    def watch(self, queues: Iterable[str], on_signal: Callable[[str], object] | None = None) -> asyncio.Event:
        """An event set on the next signal for any of `queues`; call `unwatch` after.

        `on_signal(queue)` runs before the event is set, in the notifier's call: for a local
        enqueue that is right after its script was written (lease_session.py uses it)."""
        event = asyncio.Event()
        if on_signal is not None:
            self._callbacks[event] = on_signal
        for queue in queues:
            waiters = self._waiters.get(queue)
            if waiters is None:
                waiters = self._waiters[queue] = set()
            if not waiters:
                self._changed.set()
            waiters.add(event)
        return event

    def unwatch(self, event: asyncio.Event, queues: Iterable[str]) -> None:
        self._callbacks.pop(event, None)
        for queue in queues:
            waiters = self._waiters.get(queue)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    self._changed.set()

    def watched(self) -> list[str]:
        """The queues some stream of this server waits on now."""
        return [queue for queue, waiters in self._waiters.items() if waiters]

    def recently_subscribed(self) -> list[str]:
        """The watched queues whose subscription was made since the call before the last one.

        A signal published before Redis applied a SUBSCRIBE is lost; looking at these queues
        once their subscription is surely in place (one call later) makes that good, so the
        maintenance pass need not look at every watched queue every time.
        """
        recent = self._fresh | self._fresh_before
        self._fresh_before, self._fresh = self._fresh, set()
        return [queue for queue in recent if self._waiters.get(queue)]

    def notify(self, queue: str) -> None:
        """Wakes this server's waiters on `queue` (used for local enqueues: no round trip)."""
        for event in self._waiters.get(queue, ()):
            on_signal = self._callbacks.get(event)
            if on_signal is not None:
                on_signal(queue)
            event.set()

    async def run(self) -> None:
        """Keeps the subscription in step with the watched queues and relays signals; relays
        the messages of the channels given to `listen` on a connection of their own."""
        listen = self._listen_sharded if is_cluster(self._redis) else self._listen
        queues = asyncio.create_task(self._keep(listen, "signal"))
        try:
            if self._handlers:
                await self._keep(self._listen_channels, "stop and watch")
            await queues
        finally:
            queues.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await queues  # its connections close before this returns

    async def _keep(self, listen: Callable[[], Awaitable[None]], what: str) -> None:
        while True:
            try:
                await listen()
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                logger.warning("%s subscription lost (%s); resubscribing", what, exc)
            except Exception:
                logger.exception("%s listener failed; restarting it", what)
            if listen != self._listen_channels:
                self._wake_all()
            await asyncio.sleep(_RESUBSCRIBE_DELAY_S)

    async def _listen(self) -> None:
        pubsub, close = await pubsub_of(self._redis)
        subscribed: set[str] = set()
        # A new connection holds no subscription: make every watched queue's at once, whatever
        # changed before (a sync that failed half-way had cleared the flag).
        self._changed.set()
        try:
            while True:
                if self._changed.is_set() or self._release_due():
                    await self._sync_subscriptions(pubsub, subscribed)
                if not subscribed:
                    # Reading a pub/sub connection with no subscription is an error in redis-py.
                    await self._changed.wait()
                    continue
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_READ_TIMEOUT_S)
                if message is not None:
                    self._signalled(message["channel"], message["data"])
        finally:
            with contextlib.suppress(Exception):
                await close()

    async def _listen_sharded(self) -> None:
        """`_listen` on a cluster: SSUBSCRIBE on each channel's primary, until a subscription
        is lost (a failover, a slot move); the next call reads the slot map again first."""
        cluster = cast(RedisCluster, self._redis)
        if self._stale_map:
            await refresh_slot_map(cluster)
            self._stale_map = False
        elif not cluster.nodes_manager.slots_cache:  # the client reads the slot map lazily
            await cluster.initialize()
        subscriptions = ShardSubscriptions(cluster, self._signalled, self._changed.set)
        subscribed: set[str] = set()
        self._changed.set()  # subscribe to every watched queue at once
        try:
            while True:
                if subscriptions.error is not None:
                    raise subscriptions.error
                if self._changed.is_set() or self._release_due():
                    await self._sync_subscriptions(subscriptions, subscribed)
                timeout = _READ_TIMEOUT_S if self._unwatched_since else None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._changed.wait()
        except Exception:
            self._stale_map = True
            raise
        finally:
            with contextlib.suppress(Exception):
                await subscriptions.aclose()

    def _signalled(self, channel: bytes, data: bytes) -> None:
        if data != self._own_message:
            queue = self._channels.get(channel)
            if queue is not None:
                self.notify(queue)

    async def _listen_channels(self) -> None:
        pubsub, close = await pubsub_of(self._redis)
        try:
            await pubsub.subscribe(*self._handlers)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_READ_S)
                if message is not None:
                    self._handle(self._handlers[message["channel"]], message["data"])
        finally:
            with contextlib.suppress(Exception):
                await close()

    @staticmethod
    def _handle(handler: Callable[[bytes], None], data: bytes) -> None:
        try:
            handler(data)
        except Exception:  # a failing handler must not end the listener
            logger.exception("handling the message %r failed", data[:200])

    async def _sync_subscriptions(self, pubsub: PubSub | ShardSubscriptions, subscribed: set[str]) -> None:
        self._changed.clear()
        wanted = set(self.watched())
        for queue in wanted - subscribed:
            channel = QueueKeys.of(self._prefix, queue).signal
            self._channels[channel.encode()] = queue
            await pubsub.subscribe(channel)
            subscribed.add(queue)
            self._fresh.add(queue)
        await self._release_unwatched(pubsub, subscribed, wanted)

    def _release_due(self) -> bool:
        """Whether a subscription nobody watches has become old enough to release."""
        if not self._unwatched_since:
            return False
        oldest = min(self._unwatched_since.values())
        return asyncio.get_running_loop().time() - oldest >= self._unsubscribe_after_s

    async def _release_unwatched(
        self, pubsub: PubSub | ShardSubscriptions, subscribed: set[str], wanted: set[str]
    ) -> None:
        """Unsubscribes from queues no stream has watched for a while (closed streams)."""
        now = asyncio.get_running_loop().time()
        for queue in wanted:
            self._unwatched_since.pop(queue, None)
        for queue in subscribed - wanted:
            since = self._unwatched_since.setdefault(queue, now)
            if now - since >= self._unsubscribe_after_s:
                channel = QueueKeys.of(self._prefix, queue).signal
                await pubsub.unsubscribe(channel)
                subscribed.discard(queue)
                self._channels.pop(channel.encode(), None)
                self._unwatched_since.pop(queue, None)
                if not self._waiters.get(queue):
                    self._waiters.pop(queue, None)

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()
