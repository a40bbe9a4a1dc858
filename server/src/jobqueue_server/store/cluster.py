"""Redis Cluster (Valkey Cluster): `redis+cluster://host:port[,host:port...]`.

Every key a script touches carries its queue's hash tag (keys.py), so each script runs on the
one node that serves that slot. The scripts keep their pipelined connection (pipeline.py), one
per node, chosen by the slot of the script's first key; a MOVED or ASK reply (slots moved, a
replica promoted) or a lost node refreshes the slot map and the call is sent again once.
Everything else goes through redis-py's cluster client. Pub/sub stays plain: on a cluster a
plain PUBLISH reaches every node, so the listener subscribes on any one node, and on another
when that one goes away.
"""

from __future__ import annotations

import contextlib
import random
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot

from jobqueue_server.store.addresses import parse_addresses
from jobqueue_server.store.pipeline import ScriptCalls, ScriptPipeline, pipeline_of

SCHEME = "redis+cluster"
MAX_NODES = 64
# Replies that mean the slot is served elsewhere now.
_REDIRECTS = ("MOVED ", "ASK ")


def is_cluster_url(url: str) -> bool:
    return url.startswith(f"{SCHEME}://")


def startup_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """The (host, port) of every node a cluster URL names, and its username and password."""
    named = parse_addresses(url, SCHEME, "nodes", MAX_NODES)
    return named.hosts, named.username, named.password


def connect(url: str, timeout_s: float) -> Redis:
    """A cluster client that fails fast when a node is gone, as connect_redis's does.

    Typed as Redis: the store uses only commands and single-slot transactions, which the cluster
    client serves alike (pub/sub excepted: see `pubsub_of`)."""
    nodes, username, password = startup_nodes(url)
    cluster = ClosingCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        username=username,
        password=password,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
        # The URL's nodes stay the ones asked for the slot map: redis-py would otherwise swap
        # them for the discovered ones and drop the old objects with their connections open.
        dynamic_startup_nodes=False,
    )
    _accept_routing_keywords(cluster)
    return cast(Redis, cluster)


def _accept_routing_keywords(cluster: RedisCluster) -> None:
    """redis-py's cluster transactions pass each command's routing `keys=` on to its reply
    callback, and the callbacks that are plain lambdas (HGETALL's) refuse it: drop it first."""

    def without_keys(callback: Callable[..., Any]) -> Callable[..., Any]:
        def call(response: Any, **options: Any) -> Any:
            options.pop("keys", None)
            return callback(response, **options)

        return call

    callbacks = cluster.response_callbacks
    for command, callback in list(callbacks.items()):
        callbacks[command] = without_keys(callback)


def is_cluster(redis: object) -> bool:
    return isinstance(redis, RedisCluster)


async def pubsub_of(redis: Redis) -> tuple[PubSub, Callable[[], Awaitable[None]]]:
    """A plain pub/sub connection: to `redis` itself, or on a cluster to a node picked at random
    (another one at the next reconnect when that node is gone); with what closes it."""
    if not is_cluster(redis):
        pubsub = redis.pubsub()
        return pubsub, pubsub.aclose
    cluster = cast(RedisCluster, redis)
    if not cluster.get_nodes():  # the client reads the slot map lazily
        await cluster.initialize()
    node = random.choice(cluster.get_nodes())
    kwargs = cluster.connection_kwargs
    client = Redis(
        host=node.host,
        port=int(node.port),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        socket_connect_timeout=kwargs.get("socket_connect_timeout"),
    )
    pubsub = client.pubsub()

    async def close() -> None:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()

    return pubsub, close


async def refresh_slot_map(cluster: RedisCluster) -> None:
    """Reads the slot map again. redis-py (7.4) keeps its node objects for the nodes it knew,
    but maps the slots to new ones, which then hold connections nothing closes: the slots are
    pointed back at the kept objects."""
    manager = cluster.nodes_manager
    await manager.initialize()
    kept: dict[int, list[ClusterNode]] = {}
    for slot, nodes in manager.slots_cache.items():
        same = kept.get(id(nodes))
        if same is None:
            same = kept[id(nodes)] = [manager.nodes_cache.get(node.name, node) for node in nodes]
        manager.slots_cache[slot] = same


async def wake(redis: Redis, channel: str, message: str) -> None:
    """Sends a queue's wake-up as the scripts do: SPUBLISH on a cluster (to the shard of the
    channel's slot, where the servers subscribe with SSUBSCRIBE), else PUBLISH."""
    command = "SPUBLISH" if is_cluster(redis) else "PUBLISH"
    await redis.execute_command(command, channel, message)  # type: ignore[no-untyped-call]


async def publish(redis: Redis, channel: str, message: str) -> None:
    """PUBLISH outside any pipeline, by a plain client or a cluster one (which has no publish();
    it sends the command to one node, and the cluster bus carries it to every other)."""
    await redis.execute_command("PUBLISH", channel, message)  # type: ignore[no-untyped-call]


class ClusterScriptPipeline:
    """ScriptPipeline's calls, each sent to the node serving its first key's slot."""

    def __init__(self, cluster: RedisCluster, timeout_s: float) -> None:
        self._cluster = cluster
        self._timeout_s = timeout_s
        self._nodes: dict[str, ScriptPipeline] = {}

    async def _pipeline(self, keys: Sequence[str]) -> ScriptPipeline:
        if not self._cluster.nodes_manager.slots_cache:  # the client reads the slot map lazily
            await self._cluster.initialize()
        return self._node_pipeline(keys)

    def _node_pipeline(self, keys: Sequence[str]) -> ScriptPipeline:
        node = self._cluster.nodes_manager.get_node_from_slot(key_slot(keys[0].encode()))
        pipeline = self._nodes.get(node.name)
        if pipeline is None:
            kwargs = {**self._cluster.connection_kwargs, "host": node.host, "port": node.port}
            pipeline = self._nodes[node.name] = ScriptPipeline.for_address(kwargs, self._timeout_s)
        return pipeline

    async def evalsha(
        self,
        sha: str,
        source: str,
        keys: Sequence[str],
        args: Sequence[Any],
        sent: Callable[[], object] | None = None,
    ) -> Any:
        try:
            return await (await self._pipeline(keys)).evalsha(sha, source, keys, args, sent)
        except redis_errors.ConnectionError:
            # The script may have run: no second try (the caller sees UNAVAILABLE, as on one
            # node), but the next call goes where the slot map says now.
            await self._refresh_quietly()
            raise
        except redis_errors.ResponseError as error:
            if not str(error).startswith(_REDIRECTS):
                raise
        # Redirected: the script did not run on that node.
        await self._refresh()
        return await (await self._pipeline(keys)).evalsha(sha, source, keys, args, sent)

    def evalsha_now(self, sha: str, source: str, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """Written before this returns, as ScriptPipeline.evalsha_now, once the slot map is known."""
        if not self._cluster.nodes_manager.slots_cache:
            return self.evalsha(sha, source, keys, args)
        pipeline = self._node_pipeline(keys)
        return self._redirected(pipeline.evalsha_now(sha, source, keys, args), sha, source, keys, args)

    async def _redirected(
        self, reply: Awaitable[Any], sha: str, source: str, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        try:
            return await reply
        except redis_errors.ConnectionError:
            await self._refresh_quietly()
            raise
        except redis_errors.ResponseError as error:
            if not str(error).startswith(_REDIRECTS):
                raise
        await self._refresh()
        return await self._node_pipeline(keys).evalsha(sha, source, keys, args)

    async def _refresh_quietly(self) -> None:
        with contextlib.suppress(redis_errors.RedisError, OSError):  # none answers: the next call tries
            await self._refresh()

    async def _refresh(self) -> None:
        """Reads the slot map again (from any node that answers) and forgets unused nodes."""
        await refresh_slot_map(self._cluster)
        serving = {node.name for node in self._cluster.get_primaries()}
        for name in [name for name in self._nodes if name not in serving]:
            await self._nodes.pop(name).aclose()

    async def aclose(self) -> None:
        for pipeline in self._nodes.values():
            await pipeline.aclose()
        self._nodes.clear()


# One per cluster client, as pipeline.py keeps one per plain client.
_PIPELINES: weakref.WeakKeyDictionary[RedisCluster, ClusterScriptPipeline] = weakref.WeakKeyDictionary()


def script_calls(redis: Redis, timeout_s: float) -> ScriptCalls:
    """Where the store's scripts go: the pipeline of `redis`, or of each node of a cluster."""
    if not is_cluster(redis):
        return pipeline_of(redis, timeout_s)
    cluster = cast(RedisCluster, redis)
    pipeline = _PIPELINES.get(cluster)
    if pipeline is None:
        pipeline = _PIPELINES[cluster] = ClusterScriptPipeline(cluster, timeout_s)
    return pipeline


class ClosingCluster(RedisCluster):
    """A cluster client whose `aclose` also closes the scripts' connections to its nodes."""

    async def aclose(self) -> None:
        pipeline = _PIPELINES.pop(self, None)
        if pipeline is not None:
            await pipeline.aclose()
        await super().aclose()
