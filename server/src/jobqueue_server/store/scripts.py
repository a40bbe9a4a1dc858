"""Loads the Lua scripts, one file per transition, once per Store instance."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


@dataclass(frozen=True, slots=True)
class Scripts:
    """Registered scripts: EVALSHA, with a transparent reload on NOSCRIPT after a restart."""

    enqueue: AsyncScript
    lease: AsyncScript
    ack: AsyncScript
    fail: AsyncScript
    extend: AsyncScript
    requeue: AsyncScript
    promote: AsyncScript
    cancel: AsyncScript
    retry: AsyncScript
    trim: AsyncScript
    stats: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        folder = resources.files("jobqueue_server.store") / "lua"
        by_name = {
            path.name.split("-")[0]: redis.register_script(path.read_text(encoding="utf-8"))
            for path in folder.iterdir()
            if path.name.endswith(".lua")
        }
        return cls(**by_name)

    def all(self) -> list[AsyncScript]:
        return [getattr(self, name) for name in self.__dataclass_fields__]
