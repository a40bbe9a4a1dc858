"""What Redis spent: command counts from INFO commandstats and CPU time from INFO cpu.

Counts are differences between two readings, so nothing is reset and a Redis that others
use (a --redis-url) is read the same way as our own; commands of other clients in between
would be counted too. Commands run inside Lua scripts are counted, as Redis counts them,
and so are the scripts' own EVALSHA calls. Our own INFO reads are left out.

This is the one bench module that talks to Redis directly, as runtime/valkey.py does: it
reads server statistics, which the store does not offer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import redis

SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
OWN_COMMANDS = frozenset({"info", "pubsub|channels", "pubsub|numpat", "pubsub|numsub"})
CLEANUP_BATCH = 1000
TOP_COMMANDS = 5
CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 60.0  # FLUSHALL of a large data set is slow


class RedisUnreachable(RuntimeError):
    """The Redis to measure on does not answer."""


@dataclass(frozen=True)
class RedisCounters:
    """One reading: calls per command (lower case, subcommands as "config|get") and CPU seconds."""

    calls: Mapping[str, int]
    cpu_seconds: float

    def since(self, before: RedisCounters) -> RedisUsage:
        delta = {name: count - before.calls.get(name, 0) for name, count in self.calls.items()}
        commands = sum(count for name, count in delta.items() if name not in OWN_COMMANDS)
        scripts = sum(count for name, count in delta.items() if name in SCRIPT_COMMANDS)
        top = sorted(
            ((n, c) for n, c in delta.items() if c > 0 and n not in OWN_COMMANDS), key=lambda nc: -nc[1]
        )
        return RedisUsage(commands, scripts, self.cpu_seconds - before.cpu_seconds, dict(top[:TOP_COMMANDS]))


@dataclass(frozen=True)
class RedisUsage:
    """What Redis did between two readings."""

    commands: int
    script_calls: int
    cpu_seconds: float
    top_commands: Mapping[str, int] = field(default_factory=dict)  # the most called, most first


class RedisProbe:
    """A small synchronous connection for readings, version and cleanup."""

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=COMMAND_TIMEOUT_S
        )

    def close(self) -> None:
        self._client.close()

    def ping(self) -> None:
        """Checks that Redis answers, before anything is started on it."""
        try:
            self._client.ping()
        except redis.RedisError as error:
            raise RedisUnreachable(f"no answer from Redis: {error}") from error

    def _info(self, section: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._client.info(section))

    def counters(self) -> RedisCounters:
        stats = self._info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
        cpu = self._info("cpu")
        return RedisCounters(calls, float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))

    def channels(self) -> int:
        """How many pub/sub channels have a subscriber (PUBSUB CHANNELS)."""
        return len(cast(list[bytes], self._client.pubsub_channels()))

    def numpat(self) -> int:
        """How many pattern subscriptions there are (PUBSUB NUMPAT)."""
        return int(cast(int, self._client.pubsub_numpat()))

    def subscribers(self, channels: list[str]) -> list[int]:
        """The subscriber count of each channel (PUBSUB NUMSUB), in order."""
        counts = cast(list[tuple[bytes, int]], self._client.pubsub_numsub(*channels)) if channels else []
        return [int(count) for _, count in counts]

    def server_version(self) -> str:
        """ "valkey 9.1.2" or "redis 7.4.0"."""
        server = self._info("server")
        if "valkey_version" in server:
            return f"valkey {server['valkey_version']}"
        return f"redis {server.get('redis_version', 'unknown')}"

    def flushall(self) -> None:
        """Empties the whole Redis: only for one the benchmark started itself."""
        self._client.flushall()

    def delete_prefix(self, prefix: str) -> int:
        """Deletes every key under `prefix:` (what the benchmark's servers wrote); returns how many."""
        deleted = 0
        batch: list[bytes] = []
        for key in self._client.scan_iter(match=f"{prefix}:*", count=CLEANUP_BATCH):
            batch.append(cast(bytes, key))
            if len(batch) >= CLEANUP_BATCH:
                deleted += cast(int, self._client.unlink(*batch))
                batch = []
        if batch:
            deleted += cast(int, self._client.unlink(*batch))
        return deleted
