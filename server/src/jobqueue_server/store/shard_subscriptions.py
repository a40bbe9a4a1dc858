"""Sharded pub/sub on a cluster: SSUBSCRIBE to each channel on the primary serving its slot.

A sharded message stays on its shard (bench/cluster_wakeups.py: a third of what a plain one,
which the cluster bus carries to every node, costs). redis-py's asyncio client has no
SSUBSCRIBE, so each node's connection is driven here: one connection per primary that serves
a subscribed channel, read by a task of its own. When a slot moves away or its primary fails,
the node drops the subscription (it says `sunsubscribe` unasked) or the connection: `error`
then holds what happened, `on_lost` is called, and the caller starts over on a fresh slot map
(signals.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection


class SubscriptionMoved(Exception):
    """A node dropped a subscription it was not asked to drop: the channel's slot moved."""


@dataclass
class _Shard:
    client: Redis
    connection: Connection
    #: Channels unsubscribed by request, whose `sunsubscribe` reply is expected.
    leaving: set[bytes] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None


class ShardSubscriptions:
    """The sharded subscriptions of one server; `on_message(channel, data)` gets each message."""

    def __init__(
        self,
        cluster: RedisCluster,
        on_message: Callable[[bytes, bytes], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._cluster = cluster
        self._on_message = on_message
        self._on_lost = on_lost
        self._shards: dict[str, _Shard] = {}
        self._owners: dict[bytes, _Shard] = {}
        #: What lost a subscription or a connection, once one is lost.
        self.error: Exception | None = None
        #: The channels whose subscription a node confirmed.
        self.confirmed: set[bytes] = set()

    async def subscribe(self, *channels: str) -> None:
        by_node: dict[str, tuple[ClusterNode, list[str]]] = {}
        for channel in channels:
            node = self._cluster.get_node_from_key(channel)
            if node is None:
                raise SubscriptionMoved(f"no node serves the slot of {channel!r} now")
            by_node.setdefault(node.name, (node, []))[1].append(channel)
        for node, named in by_node.values():
            shard = await self._shard(node)
            await shard.connection.send_command("SSUBSCRIBE", *named)
            for channel in named:
                self._owners[channel.encode()] = shard

    async def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            shard = self._owners.pop(channel.encode(), None)
            if shard is not None:
                shard.leaving.add(channel.encode())
                await shard.connection.send_command("SUNSUBSCRIBE", channel)

    async def aclose(self) -> None:
        for shard in self._shards.values():
            if shard.reader is not None:
                shard.reader.cancel()
                with contextlib.suppress(BaseException):
                    await shard.reader
            with contextlib.suppress(Exception):
                await shard.connection.disconnect()
            await shard.client.aclose()
        self._shards.clear()

    async def _shard(self, node: ClusterNode) -> _Shard:
        shard = self._shards.get(node.name)
        if shard is None:
            kwargs = self._cluster.connection_kwargs
            # No socket_timeout: an idle subscription reads nothing for as long as it likes.
            client = Redis(
                host=node.host,
                port=int(node.port),
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                socket_connect_timeout=kwargs.get("socket_connect_timeout"),
            )
            connection = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            shard = self._shards[node.name] = _Shard(client, connection)
            await connection.connect()
            shard.reader = asyncio.create_task(self._read(shard), name=f"ssubscribe {node.name}")
        return shard

    async def _read(self, shard: _Shard) -> None:
        try:
            while True:
                reply: Any = await shard.connection.read_response()
                kind = reply[0]
                if kind == b"smessage":
                    self._on_message(reply[1], reply[2])
                elif kind == b"ssubscribe":
                    self.confirmed.add(reply[1])
                elif kind == b"sunsubscribe":
                    self.confirmed.discard(reply[1])
                    if reply[1] not in shard.leaving:
                        raise SubscriptionMoved(f"the node dropped {reply[1]!r}: its slot moved")
                    shard.leaving.discard(reply[1])
        except Exception as exc:
            if self.error is None:
                self.error = exc
                self._on_lost()
