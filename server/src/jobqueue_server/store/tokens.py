"""API tokens in Redis: one hash of records, keyed by token id, never the secrets.

One key holds every token and a version field bumped by each change, so a change is one
MULTI on one slot (Redis Cluster too) and a server notices it with one HGET a second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from jobqueue_server.store.guard import redis_errors

#: The hash field counting changes; token ids are hex, so it cannot collide with one.
VERSION_FIELD = "!version"
#: How many tokens may exist: every server keeps them all in memory.
MAX_TOKENS = 10_000


def tokens_key(prefix: str) -> str:
    return f"{prefix}:tokens"


def bootstrap_lock_key(prefix: str) -> str:
    return f"{prefix}:tokens:bootstrap"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the store keeps of a token: its SHA-256 secret hash, never the secret."""

    token_id: str
    name: str
    role: str
    queues: tuple[str, ...]
    created_ms: int
    expires_ms: int | None
    secret_sha256: str

    def encode(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "role": self.role,
                "queues": list(self.queues),
                "created_ms": self.created_ms,
                "expires_ms": self.expires_ms,
                "secret_sha256": self.secret_sha256,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, token_id: str, text: bytes) -> TokenRecord:
        fields = json.loads(text)
        return cls(
            token_id=token_id,
            name=fields["name"],
            role=fields["role"],
            queues=tuple(fields["queues"]),
            created_ms=int(fields["created_ms"]),
            expires_ms=None if fields["expires_ms"] is None else int(fields["expires_ms"]),
            secret_sha256=fields["secret_sha256"],
        )


class TooManyTokens(Exception):
    """MAX_TOKENS exist already."""


class TokenStore:
    """Creates, lists and deletes token records under one key prefix."""

    def __init__(self, redis: Redis, prefix: str, timeout_s: float) -> None:
        self._redis = redis
        self._key = tokens_key(prefix)
        self._lock_key = bootstrap_lock_key(prefix)
        self._timeout_s = timeout_s

    async def version(self) -> int:
        async with redis_errors(self._timeout_s):
            value = await self._redis.hget(self._key, VERSION_FIELD)
        return int(value or 0)

    async def load(self) -> tuple[int, list[TokenRecord]]:
        """Every record, and the version they were read at."""
        async with redis_errors(self._timeout_s):
            fields = await self._redis.hgetall(self._key)
        version = int(fields.pop(VERSION_FIELD.encode(), 0))
        return version, [TokenRecord.decode(key.decode(), value) for key, value in fields.items()]

    async def add(self, record: TokenRecord) -> None:
        """Stores a record; refused with TooManyTokens past MAX_TOKENS (checked first, so two
        servers adding at once may pass it by one each: the bound is for memory, not billing)."""
        async with redis_errors(self._timeout_s):
            if await self._redis.hlen(self._key) > MAX_TOKENS:
                raise TooManyTokens(f"at most {MAX_TOKENS:,} tokens may exist; revoke some first")
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key, record.token_id, record.encode())
                pipe.hincrby(self._key, VERSION_FIELD, 1)
                await pipe.execute()

    async def delete(self, token_id: str) -> bool:
        """Deletes a record; False when there was none."""
        async with redis_errors(self._timeout_s), self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._key, token_id)
            pipe.hincrby(self._key, VERSION_FIELD, 1)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def bootstrap(self, make: Sequence[TokenRecord], owner: str, lock_ms: int = 10_000) -> bool:
        """Adds `make` when the store holds no token at all, once across servers starting
        together (a short lock); True when this call added them."""
        async with redis_errors(self._timeout_s):
            if not await self._redis.set(self._lock_key, owner, nx=True, px=lock_ms):
                return False
            try:
                held = await self._redis.hlen(self._key)
                if held - int(await self._redis.hexists(self._key, VERSION_FIELD)) > 0:
                    return False
                async with self._redis.pipeline(transaction=True) as pipe:
                    for record in make:
                        pipe.hset(self._key, record.token_id, record.encode())
                    pipe.hincrby(self._key, VERSION_FIELD, 1)
                    await pipe.execute()
                return True
            finally:
                await self._redis.delete(self._lock_key)
