"""The replicated durability level: writes confirmed by the primary's replicas (WAIT).

`WAIT numreplicas timeout` waits until the writes *of the connection it is sent on* reached
that many replicas. So a replicated call takes a connection of its own to each primary it
writes to (one on a single Redis; on a cluster, the node of each queue's slot), runs its
scripts there, then sends WAIT on each. Before anything is written, each of those primaries
must have enough connected replicas (ROLE), or the call is refused and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from jobqueue_server.errors import DurabilityUnavailable, ReplicationNotConfirmed, StoreUnavailable
from jobqueue_server.store.cluster import is_cluster
from jobqueue_server.store.keys import QueueKeys


class ReplicaGate:
    """Hands out, per queue, the connection whose writes WAIT confirms at the end."""

    def __init__(self, redis: Redis, prefix: str, replicas: int, timeout_ms: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self.replicas = replicas
        self._timeout_ms = timeout_ms

    async def _primary_of(self, queue: str, opened: AsyncExitStack) -> tuple[str, Redis]:
        """The primary serving `queue` and a client to it (closed with `opened`)."""
        if not is_cluster(self._redis):
            return "", self._redis
        cluster = cast(RedisCluster, self._redis)
        if not cluster.nodes_manager.slots_cache:
            await cluster.initialize()
        node = cluster.get_node_from_key(QueueKeys.of(self._prefix, queue).jobs)
        if node is None:
            raise StoreUnavailable(f"no node of the cluster serves queue {queue!r} now")
        client = Redis(host=node.host, port=int(node.port), **_credentials(cluster))
        opened.push_async_callback(client.aclose)
        return node.name, client

    async def problem(self, client: Redis, name: str = "") -> str | None:
        """Why this primary cannot confirm writes on `replicas` replicas now, or None."""
        role = await client.execute_command("ROLE")  # type: ignore[no-untyped-call]
        kind = role[0].decode() if isinstance(role[0], bytes) else str(role[0])
        where = f"the Redis at {name}" if name else "this Redis"
        if kind != "master":
            return f"{where} is a {kind}, not a primary"
        connected = len(role[2])
        if connected < self.replicas:
            return (
                f"{where} has {connected} connected replica{'s' if connected != 1 else ''}, and "
                f"DURABILITY_REPLICATED waits for {self.replicas} (replicas_to_wait)"
            )
        return None

    async def deployment_problem(self) -> str | None:
        """Why some primary of the deployment cannot confirm replicated writes now, or None."""
        if not is_cluster(self._redis):
            return await self.problem(self._redis)
        cluster = cast(RedisCluster, self._redis)
        if not cluster.nodes_manager.slots_cache:
            await cluster.initialize()
        for node in cluster.get_primaries():
            client = Redis(host=node.host, port=int(node.port), **_credentials(cluster))
            try:
                problem = await self.problem(client, node.name)
            finally:
                await client.aclose()
            if problem is not None:
                return problem
        return None

    @asynccontextmanager
    async def connections(self, queues: Iterable[str]) -> AsyncIterator[Callable[[str], Redis]]:
        """Connections for the writes to `queues`, by queue; when the body ends without an
        error, returns only once each connection's writes reached the replicas."""
        async with AsyncExitStack() as stack:
            primaries: dict[str, tuple[str, Redis]] = {}
            clients: dict[str, Redis] = {}
            for queue in queues:
                name, client = primaries[queue] = await self._primary_of(queue, stack)
                clients.setdefault(name, client)
            for name, client in clients.items():  # before any write: a refusal changes nothing
                problem = await self.problem(client, name)
                if problem is not None:
                    raise DurabilityUnavailable(
                        f"durability REPLICATED refused, nothing was written: {problem}"
                    )
            connections: dict[str, Any] = {
                name: await stack.enter_async_context(client.client()) for name, client in clients.items()
            }
            yield lambda queue: cast(Redis, connections[primaries[queue][0]])
            for connection in connections.values():
                await self._wait(connection)

    async def _wait(self, connection: Redis) -> None:
        reached = int(await connection.execute_command("WAIT", self.replicas, self._timeout_ms))  # type: ignore[no-untyped-call]
        if reached < self.replicas:
            raise ReplicationNotConfirmed(
                f"the write was applied but reached {reached} of {self.replicas} replicas within "
                f"{self._timeout_ms} ms; a failover now may lose it"
            )


def _credentials(cluster: RedisCluster) -> dict[str, Any]:
    kwargs = cluster.connection_kwargs
    return {
        "username": kwargs.get("username"),
        "password": kwargs.get("password"),
        "socket_connect_timeout": kwargs.get("socket_connect_timeout"),
    }
