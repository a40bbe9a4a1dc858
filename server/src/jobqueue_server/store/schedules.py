"""Schedules in Redis: definitions, the state of their ticks, and the next tick of each.

A definition is its Schedule message, stored as sent (output-only fields cleared); its state
(`version|cursor|last run|last job`) is only ever changed by the scripts: schedule_put when the
definition changes, schedule_fire when a server has made the jobs of the ticks up to a new
cursor. The next ticks form one sorted set, so a server finds the due schedules with one read.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from jobqueue_server.errors import InternalError
from jobqueue_server.store.guard import MAPPED
from jobqueue_server.store.keys import ScheduleKeys
from jobqueue_server.store.scripts import Scripts


@dataclass(frozen=True, slots=True)
class ScheduleState:
    version: int
    cursor_ms: int  # the ticks up to it are done
    last_run_ms: int | None
    last_job_id: str


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    name: str
    definition: bytes
    state: ScheduleState
    next_ms: int | None


class PutRefused(Exception):
    """schedule_put said no: `outcome` is "exists", "missing", "changed" or "full"."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def _state(raw: bytes) -> ScheduleState:
    version, cursor, last_run, last_job = raw.decode().split("|", 3)
    return ScheduleState(int(version), int(cursor), int(last_run) if last_run else None, last_job)


class ScheduleStore:
    """Reads and the three scripts of schedules, under one key prefix."""

    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        prefix: str,
        guard: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = ScheduleKeys.of(prefix)
        self._guard = guard

    async def put(
        self,
        name: str,
        definition: bytes,
        *,
        expected_version: int,
        cursor_ms: int,
        next_ms: int | None,
        max_schedules: int,
    ) -> int:
        """Creates (`expected_version` 0) or replaces a definition; its new version, or
        PutRefused."""
        planned = "" if next_ms is None else next_ms
        args = [name, definition, expected_version, cursor_ms, planned, max_schedules]
        async with MAPPED:
            outcome, version = await self._scripts.schedule_put(keys=self._keys.all(), args=args)
        if outcome != b"ok":
            raise PutRefused(outcome.decode())
        return int(version)

    async def fire(
        self, name: str, version: int, cursor_ms: int, next_ms: int | None, made: tuple[int, str] | None
    ) -> str:
        """Moves the cursor after the jobs of the ticks up to it were made; the script's
        outcome ("ok", "missing", "changed", "done")."""
        tick, job_id = made if made is not None else ("", "")
        args = [name, version, cursor_ms, "" if next_ms is None else next_ms, tick, job_id]
        async with MAPPED:
            outcome = await self._scripts.schedule_fire(keys=self._keys.all(), args=args)
        return str(outcome.decode())

    async def postpone(self, name: str, next_ms: int) -> None:
        """Moves a due schedule's next look to `next_ms` (only if it is still planned)."""
        async with self._guard():
            await self._redis.zadd(self._keys.due, {name: next_ms}, xx=True)

    async def delete(self, name: str) -> bool:
        async with MAPPED:
            removed = await self._scripts.schedule_delete(keys=self._keys.all(), args=[name])
        return bool(removed)

    async def get(self, name: str) -> StoredSchedule | None:
        found = await self.many([name])
        return found[0] if found else None

    async def many(self, names: list[str]) -> list[StoredSchedule]:
        """The schedules of `names` that exist, in that order."""
        if not names:
            return []
        async with self._guard(), self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.defs, names)
            pipe.hmget(self._keys.state, names)
            pipe.zmscore(self._keys.due, names)
            definitions, states, nexts = await pipe.execute()
        found = []
        for name, definition, state, next_ms in zip(names, definitions, states, nexts, strict=True):
            if definition is None or state is None:
                continue  # deleted between two reads, or half-written: not there
            try:
                parsed = _state(state)
            except ValueError as error:
                raise InternalError(f"schedule {name!r} has a malformed state {state!r}") from error
            found.append(StoredSchedule(name, definition, parsed, None if next_ms is None else int(next_ms)))
        return found

    async def names(self) -> list[str]:
        """Every schedule's name, sorted (at most max_schedules exist)."""
        async with self._guard():
            names = await self._redis.hkeys(self._keys.defs)
        return sorted(n.decode() for n in names)

    async def due(self, now_ms: int, limit: int) -> list[str]:
        """The names of up to `limit` schedules whose next tick is at or before `now_ms`."""
        async with self._guard():
            names = await self._redis.zrangebyscore(self._keys.due, "-inf", now_ms, start=0, num=limit)
        return [n.decode() for n in names]

    async def earliest_ms(self) -> int | None:
        """The earliest next tick of any schedule."""
        async with self._guard():
            first: list[Any] = await self._redis.zrange(self._keys.due, 0, 0, withscores=True)
        return int(first[0][1]) if first else None
