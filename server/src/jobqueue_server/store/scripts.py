"""Loads the Lua scripts, one file per transition, once per Store instance.

Each script's header is read at registration: the key count its file name declares must match
the KEYS it lists, every call must pass exactly that many keys, and the result codes it lists
are the only ones the store accepts from it (codes.py). What the scripts share (the clock, the
job record) is in lua/prelude.lua, put right after each script's header when it is loaded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from jobqueue_server.errors import InternalError
from jobqueue_server.store.cluster import is_cluster
from jobqueue_server.store.lua_header import LuaHeader, parse
from jobqueue_server.store.pipeline import ScriptCalls


class Script:
    """One script: EVALSHA, with a transparent reload on NOSCRIPT after a restart. Calls go
    through the shared pipeline, or through `client` when the caller needs its own connection
    (a fsynced write waits for WAITAOF on the connection that wrote). `sent` is as in
    ScriptPipeline.evalsha, and only called on the pipeline."""

    def __init__(self, redis: Redis, pipeline: ScriptCalls, header: LuaHeader, source: str) -> None:
        self.header = header
        self.script = source
        self._pipeline = pipeline
        self._registered: AsyncScript = redis.register_script(source)
        self.sha: str = self._registered.sha

    async def __call__(
        self,
        keys: Sequence[str],
        args: Sequence[Any],
        client: Redis | None = None,
        sent: Callable[[], object] | None = None,
    ) -> Any:
        self._check(keys)
        if client is None:
            return await self._pipeline.evalsha(self.sha, self.script, keys, args, sent)
        return await self._registered(keys=keys, args=args, client=client)

    def now(self, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """The call on the pipeline, written before this returns (ScriptPipeline.evalsha_now)."""
        self._check(keys)
        return self._pipeline.evalsha_now(self.sha, self.script, keys, args)

    def _check(self, keys: Sequence[str]) -> None:
        if len(keys) != self.header.key_count:
            raise InternalError(f"{self.header.file} takes {self.header.key_count} keys, {len(keys)} given")


PRELUDE = "prelude.lua"


def _folder() -> Traversable:
    return resources.files("jobqueue_server.store") / "lua"


_PLAIN_WAKE = "local WAKE = 'PUBLISH'"


def prelude(sharded: bool = False) -> str:
    """The shared part; `sharded`: the scripts send wake-ups with SPUBLISH (on a cluster)."""
    text = (_folder() / PRELUDE).read_text(encoding="utf-8")
    return text.replace(_PLAIN_WAKE, "local WAKE = 'SPUBLISH'") if sharded else text


def with_prelude(source: str, shared: str) -> str:
    """The script as loaded: its header, the prelude, then its body (the header stays first)."""
    end = source.index("]]") + 2
    return f"{source[:end]}\n{shared}{source[end:]}"


def headers(sharded: bool = False) -> dict[str, tuple[LuaHeader, str]]:
    """Every script's header and source as loaded (with the prelude), by name ("ack", ...)."""
    shared = prelude(sharded)
    found = {}
    for path in _folder().iterdir():
        if path.name.endswith(".lua") and path.name != PRELUDE:
            source = path.read_text(encoding="utf-8")
            header = parse(path.name, source)
            found[header.name] = (header, with_prelude(source, shared))
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
    migrate: Script
    expire: Script
    progress: Script
    schedule_put: Script
    schedule_fire: Script
    schedule_delete: Script
    attach: Script
    resolve: Script
    release_dependent: Script
    partitions_grow: Script

    @classmethod
    def register(cls, redis: Redis, pipeline: ScriptCalls) -> Scripts:
        loaded = headers(sharded=is_cluster(redis))
        return cls(
            **{name: Script(redis, pipeline, header, source) for name, (header, source) in loaded.items()}
        )

    def all(self) -> list[Script]:
        return [getattr(self, name) for name in self.__dataclass_fields__]
