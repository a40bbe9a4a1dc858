"""Loads the Lua scripts, one file per transition, once per Store instance.

Each script's header is read at registration: the key count its file name declares must match
the KEYS it lists, every call must pass exactly that many keys, and the result codes it lists
are the only ones the store accepts from it (codes.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from jobqueue_server.errors import InternalError
from jobqueue_server.store.lua_header import LuaHeader, parse
from jobqueue_server.store.pipeline import ScriptPipeline


class Script:
    """One script: EVALSHA, with a transparent reload on NOSCRIPT after a restart. Calls go
    through the shared pipeline, or through `client` when the caller needs its own connection
    (a fsynced write waits for WAITAOF on the connection that wrote)."""

    def __init__(self, redis: Redis, pipeline: ScriptPipeline, header: LuaHeader, source: str) -> None:
        self.header = header
        self.script = source
        self._pipeline = pipeline
        self._registered: AsyncScript = redis.register_script(source)
        self.sha: str = self._registered.sha

    async def __call__(self, keys: Sequence[str], args: Sequence[Any], client: Redis | None = None) -> Any:
        if len(keys) != self.header.key_count:
            raise InternalError(f"{self.header.file} takes {self.header.key_count} keys, {len(keys)} given")
        if client is None:
            return await self._pipeline.evalsha(self.sha, self.script, keys, args)
        return await self._registered(keys=keys, args=args, client=client)


def headers() -> dict[str, tuple[LuaHeader, str]]:
    """Every script's header and source, by name ("ack", "lease", ...)."""
    folder = resources.files("jobqueue_server.store") / "lua"
    found = {}
    for path in folder.iterdir():
        if path.name.endswith(".lua"):
            source = path.read_text(encoding="utf-8")
            header = parse(path.name, source)
            found[header.name] = (header, source)
    return found


@dataclass(frozen=True, slots=True)
class Scripts:
    enqueue: Script
    lease: Script
    ack: Script
    fail: Script
    extend: Script
    requeue: Script
    promote: Script
    cancel: Script
    retry: Script
    trim: Script
    stats: Script

    @classmethod
    def register(cls, redis: Redis, pipeline: ScriptPipeline) -> Scripts:
        return cls(
            **{name: Script(redis, pipeline, header, source) for name, (header, source) in headers().items()}
        )

    def all(self) -> list[Script]:
        return [getattr(self, name) for name in self.__dataclass_fields__]
