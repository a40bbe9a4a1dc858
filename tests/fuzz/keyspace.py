"""A keyspace snapshot: every key under a prefix with its type, expiry and content.

Taken by one Lua script, so the snapshot is atomic: nothing the server does can land
halfway through it. Comparing two snapshots shows any write, including a new TTL.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from jobqueue_server.store.keys import queues_set

_SNAPSHOT_LUA = """
local out = {}
for _, key in ipairs(redis.call('KEYS', ARGV[1])) do
  local kind = redis.call('TYPE', key)['ok']
  local value
  if kind == 'hash' then value = redis.call('HGETALL', key)
  elseif kind == 'list' then value = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'zset' then value = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  elseif kind == 'set' then value = redis.call('SMEMBERS', key)
  elseif kind == 'string' then value = {redis.call('GET', key)}
  else value = {'<' .. kind .. '>'} end
  out[#out + 1] = {key, kind, redis.call('PEXPIRETIME', key), value}
end
return out
"""

_CLEAR_LUA = """
local keys = redis.call('KEYS', ARGV[1])
for _, key in ipairs(keys) do
  if key ~= ARGV[2] then redis.call('DEL', key) end
end
return #keys
"""

Snapshot = dict[bytes, tuple[str, int, tuple[bytes, ...]]]


class Keyspace:
    """Snapshots (and clears) every key under one test's key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._pattern = f"{prefix}:*"
        self._registry = queues_set(prefix)
        self._snapshot = redis.register_script(_SNAPSHOT_LUA)
        self._clear = redis.register_script(_CLEAR_LUA)

    async def snapshot(self) -> Snapshot:
        rows: list[Any] = await self._snapshot(keys=[], args=[self._pattern])
        result: Snapshot = {}
        for key, kind, expire_at, value in rows:
            kind_text = kind.decode() if isinstance(kind, bytes) else str(kind)
            items = tuple(sorted(value)) if kind_text == "set" else tuple(value)
            result[key] = (kind_text, int(expire_at), items)
        return result

    async def clear(self) -> None:
        """Deletes every key under the prefix in one step (after a call that succeeded), but
        the queue registry: the server remembers the queues it registered, and its next
        maintenance pass would register them again, in the middle of the next example (as
        after Redis lost its data: test_store_data_loss.py)."""
        await self._clear(keys=[], args=[self._pattern, self._registry])


def describe_change(before: Snapshot, after: Snapshot) -> str:
    """A short account of what differs, for assertion messages."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added {added[:5]}, removed {removed[:5]}, changed {changed[:5]}"
