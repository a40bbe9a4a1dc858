"""Webhooks in Redis: their definitions and secrets, and where each delivers from.

Keys, in one hash slot (`~` is in no queue name):
- `<prefix>:{~webhooks}:defs`: webhook id -> its stored Webhook message (with create_time);
- `<prefix>:{~webhooks}:secrets`: webhook id -> its signing secret;
- `<prefix>:{~webhooks}:cursors`: "<id>|<queue>" -> "<finish ms>|<ulid>" of the last dead job
  delivered (the next delivery starts after it);
- `<prefix>:{~webhooks}:firing`: "<id>|<queue>|<event>" -> "<transitions>|<1 or 0>": how many
  times a threshold alert turned on or off, and whether it is on.

No script: each is a plain command on one key, and a delivery done twice (a server dying between
the POST and the cursor's move) is the at-least-once the contract allows.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from redis.asyncio import Redis

from jobqueue_server.store.keys import QueueKeys

#: Dead jobs one delivery pass reads per webhook and queue.
PAGE = 100


@dataclass(frozen=True, slots=True)
class StoredWebhook:
    """A webhook as stored: its id, its Webhook message serialized, its secret."""

    webhook_id: str
    definition: bytes
    secret: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a webhook's deliveries for a queue stand: after this dead job."""

    finish_ms: int
    ulid: str = ""

    def encode(self) -> str:
        return f"{self.finish_ms}|{self.ulid}"

    @classmethod
    def decode(cls, text: bytes) -> Cursor:
        ms, _, ulid = text.decode().partition("|")
        return cls(int(ms), ulid)


class WebhookStore:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        keys_of: Callable[[str], QueueKeys],
        guard: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        base = f"{prefix}:{{~webhooks}}"
        self._defs, self._secrets = f"{base}:defs", f"{base}:secrets"
        self._cursors, self._firing = f"{base}:cursors", f"{base}:firing"
        self.lock_prefix = f"{base}:delivering:"
        self._redis = redis
        self._keys = keys_of
        self._guard = guard

    async def count(self) -> int:
        async with self._guard():
            return int(await self._redis.hlen(self._defs))

    async def put(self, webhook_id: str, definition: bytes, secret: str) -> None:
        async with self._guard(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._defs, webhook_id, definition)  # type: ignore[arg-type]  # bytes are fine
            pipe.hset(self._secrets, webhook_id, secret)
            await pipe.execute()

    async def all(self) -> list[StoredWebhook]:
        """Every webhook with its secret, oldest first (ids are ulids)."""
        async with self._guard(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._defs)
            pipe.hgetall(self._secrets)
            defs, secrets = await pipe.execute()
        return [
            StoredWebhook(key.decode(), defs[key], (secrets.get(key) or b"").decode()) for key in sorted(defs)
        ]

    async def delete(self, webhook_id: str) -> bool:
        async with self._guard():
            fields = [
                f for f in await self._redis.hkeys(self._cursors) if f.decode().startswith(f"{webhook_id}|")
            ]
            firing = [
                f for f in await self._redis.hkeys(self._firing) if f.decode().startswith(f"{webhook_id}|")
            ]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hdel(self._defs, webhook_id)
                pipe.hdel(self._secrets, webhook_id)
                if fields:
                    pipe.hdel(self._cursors, *fields)
                if firing:
                    pipe.hdel(self._firing, *firing)
                removed, *_ = await pipe.execute()
        return bool(removed)

    async def cursor(self, webhook_id: str, queue: str) -> Cursor | None:
        async with self._guard():
            text = await self._redis.hget(self._cursors, f"{webhook_id}|{queue}")
        return None if text is None else Cursor.decode(text)

    async def move_cursor(self, webhook_id: str, queue: str, cursor: Cursor) -> None:
        async with self._guard():
            await self._redis.hset(self._cursors, f"{webhook_id}|{queue}", cursor.encode())

    async def dead_after(self, queue: str, cursor: Cursor) -> list[tuple[str, int]]:
        """The queue's dead jobs after `cursor` (ulid, finish ms), oldest first, at most PAGE. Jobs
        that died in the cursor's millisecond are told apart by ulid (the set's order then)."""
        async with self._guard():
            entries = await self._redis.zrangebyscore(
                self._keys(queue).dead, cursor.finish_ms, "+inf", start=0, num=PAGE + 1, withscores=True
            )
        after = [
            (ulid.decode(), int(score))
            for ulid, score in entries
            if int(score) > cursor.finish_ms or ulid.decode() > cursor.ulid
        ]
        return after[:PAGE]

    async def alert_state(self, webhook_id: str, queue: str, event: str) -> tuple[int, bool]:
        """How many times the alert changed, and whether it is on now."""
        async with self._guard():
            text = await self._redis.hget(self._firing, f"{webhook_id}|{queue}|{event}")
        if text is None:
            return 0, False
        changes, _, on = text.decode().partition("|")
        return int(changes), on == "1"

    async def set_alert_state(self, webhook_id: str, queue: str, event: str, changes: int, on: bool) -> None:
        async with self._guard():
            await self._redis.hset(self._firing, f"{webhook_id}|{queue}|{event}", f"{changes}|{int(on)}")

    async def latest_deaths(self, queues: list[str]) -> dict[str, int]:
        """Each queue's latest finish ms among its dead jobs (queues with none left out): one
        pipelined read, so a pass over idle queues costs one command each."""
        async with self._guard(), self._redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                pipe.zrange(self._keys(queue).dead, -1, -1, withscores=True)
            replies = await pipe.execute()
        return {queue: int(reply[0][1]) for queue, reply in zip(queues, replies, strict=True) if reply}
