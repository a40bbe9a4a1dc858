"""Redis Sentinel: `redis+sentinel://[user:password@]host:port[,host:port...]/service_name`.

The sentinels name the primary of `service_name`; every connection asks them where it is when it
opens (redis-py's SentinelConnectionPool; the scripts' pipeline does the same, pipeline.py), so
after a failover the next connection reaches the promoted replica. A connection that finds
itself on a replica (the old primary back, demoted) is dropped, and the call fails as
unavailable without having written anything.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from jobqueue_server.store.addresses import parse_addresses
from jobqueue_server.store.pipeline import ClosingRedis

SCHEME = "redis+sentinel"
MAX_SENTINELS = 16


def is_sentinel_url(url: str) -> bool:
    return url.startswith(f"{SCHEME}://")


def parse(url: str) -> tuple[list[tuple[str, int]], str, str | None, str | None]:
    """The sentinels' (host, port), the service name, and the primary's username and password."""
    named = parse_addresses(url, SCHEME, "sentinels", MAX_SENTINELS)
    if not named.path:
        raise ValueError(f"{SCHEME} URL: name the service after the sentinels: .../mymaster")
    return named.hosts, named.path, named.username, named.password


def connect(url: str, timeout_s: float) -> Redis:
    """A client of the primary the sentinels name now, failing fast as connect_redis's does."""
    sentinels, service, username, password = parse(url)
    sentinel = Sentinel(sentinels, socket_connect_timeout=timeout_s)  # type: ignore[no-untyped-call]
    client: SentinelRedis = sentinel.master_for(
        service,
        redis_class=SentinelRedis,
        username=username,
        password=password,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    client.sentinels = sentinel.sentinels
    return client


class SentinelRedis(ClosingRedis):
    """The primary's client; closing it also closes the connections to the sentinels."""

    sentinels: Sequence[Redis] = ()

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        for sentinel in self.sentinels:
            await sentinel.aclose()
