"""CreateSchedule, GetSchedule, ListSchedules, UpdateSchedule, DeleteSchedule, PauseSchedule and
ResumeSchedule: validation, the read-then-put of a change, and the messages.

A change reads the schedule, builds its new definition, and puts it only if no other call
changed it meanwhile (the version read); a lost race reads again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import validation
from jobqueue_server.errors import (
    FieldViolation,
    ScheduleExists,
    ScheduleLimitReached,
    ScheduleNotFound,
    StoreUnavailable,
)
from jobqueue_server.ids import new_ulid
from jobqueue_server.scheduling import definition
from jobqueue_server.scheduling.definition import Definition
from jobqueue_server.store.schedules import PutRefused, ScheduleStore, StoredSchedule

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# Read-then-put attempts before a change gives up (only concurrent changes of one schedule
# make one fail).
_ATTEMPTS = 5


class ScheduleAdmin:
    """The schedule RPCs over the store; `changed()` tells this server's scheduler."""

    def __init__(
        self,
        schedules: ScheduleStore,
        now_ms: Callable[[], Awaitable[int]],
        limits: validation.Limits,
        max_schedules: int,
        changed: Callable[[], None],
    ) -> None:
        self._schedules = schedules
        self._now_ms = now_ms  # Redis's clock: every server plans ticks by the same one
        self._limits = limits
        self._max = max_schedules
        self._changed = changed

    async def create(self, schedule: svc.Schedule) -> svc.Schedule:
        wanted = self._read(schedule)
        now = await self._now_ms()
        kept = definition.stored(schedule, paused=False, create_ms=now, update_ms=now)
        try:
            await self._schedules.put(
                wanted.name,
                kept.SerializeToString(),
                expected_version=0,
                cursor_ms=now,
                next_ms=wanted.timing.next_after(now),
                max_schedules=self._max,
            )
        except PutRefused as refused:
            if refused.outcome == "exists":
                raise ScheduleExists(f"a schedule named {wanted.name!r} exists") from refused
            raise ScheduleLimitReached(
                f"{self._max:,} schedules exist, as many as max_schedules allows"
            ) from refused
        self._changed()
        return await self.get(wanted.name)

    async def get(self, name: str) -> svc.Schedule:
        found = await self._schedules.get(definition.name(name, "name"))
        if found is None:
            raise ScheduleNotFound(f"no schedule is named {name!r}")
        return message(found)

    async def list(self, page_size: int, page_token: str) -> svc.ListSchedulesResponse:
        size = page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise FieldViolation(
                "page_size", f"must be 0 (the default, {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE}"
            )
        after = _after(page_token)
        names = [n for n in await self._schedules.names() if n > after]
        page = await self._schedules.many(names[:size])
        response = svc.ListSchedulesResponse(schedules=[message(s) for s in page])
        if len(names) > size:
            response.next_page_token = base64.urlsafe_b64encode(names[size - 1].encode()).decode()
        return response

    async def update(self, schedule: svc.Schedule) -> svc.Schedule:
        wanted = self._read(schedule)

        def change(current: StoredSchedule, paused: bool, now: int) -> tuple[svc.Schedule, int] | None:
            cursor = max(now, current.state.last_run_ms or 0)  # counted anew from here
            kept = definition.stored(schedule, paused=paused, create_ms=_create_ms(current), update_ms=now)
            return kept, cursor

        await self._change(wanted.name, change)
        return await self.get(wanted.name)

    async def delete(self, name: str) -> None:
        if not await self._schedules.delete(definition.name(name, "name")):
            raise ScheduleNotFound(f"no schedule is named {name!r}")
        self._changed()

    async def pause(self, name: str) -> bool:
        def change(current: StoredSchedule, paused: bool, now: int) -> tuple[svc.Schedule, int] | None:
            if paused:
                return None
            kept = svc.Schedule.FromString(current.definition)
            kept.paused = True
            kept.update_time.FromMilliseconds(now)
            return kept, current.state.cursor_ms

        return await self._change(definition.name(name, "name"), change)

    async def resume(self, name: str) -> bool:
        def change(current: StoredSchedule, paused: bool, now: int) -> tuple[svc.Schedule, int] | None:
            if not paused:
                return None
            kept = svc.Schedule.FromString(current.definition)
            kept.paused = False
            kept.update_time.FromMilliseconds(now)
            return kept, now  # the ticks that passed while paused are not made up

        return await self._change(definition.name(name, "name"), change)

    # -- helpers ---------------------------------------------------------------------------

    def _read(self, schedule: svc.Schedule) -> Definition:
        """The definition, its template checked as the job each tick will enqueue."""
        read = definition.read(schedule)
        validation.new_job(read.template, self._limits, new_ulid(0), "schedule.template.")
        return read

    async def _change(
        self, name: str, change: Callable[[StoredSchedule, bool, int], tuple[svc.Schedule, int] | None]
    ) -> bool:
        """Puts `change(current, paused, now)` (the new message and cursor) unless it is None;
        whether something changed."""
        for _ in range(_ATTEMPTS):
            current = await self._schedules.get(name)
            if current is None:
                raise ScheduleNotFound(f"no schedule is named {name!r}")
            now = await self._now_ms()
            changed = change(current, svc.Schedule.FromString(current.definition).paused, now)
            if changed is None:
                return False
            kept, cursor = changed
            timing = definition.read(kept).timing
            try:
                await self._schedules.put(
                    name,
                    kept.SerializeToString(),
                    expected_version=current.state.version,
                    cursor_ms=cursor,
                    next_ms=None if kept.paused else timing.next_after(cursor),
                    max_schedules=self._max,
                )
            except PutRefused as refused:
                if refused.outcome == "missing":
                    raise ScheduleNotFound(f"no schedule is named {name!r}") from refused
                continue  # changed by another call since it was read: read again
            self._changed()
            return True
        raise StoreUnavailable(f"schedule {name!r} kept changing under concurrent calls; try again")


def message(found: StoredSchedule) -> svc.Schedule:
    """The Schedule message a client sees: the definition and its state."""
    schedule = svc.Schedule.FromString(found.definition)
    if found.next_ms is not None:
        schedule.next_run_time.FromMilliseconds(found.next_ms)
    if found.state.last_run_ms is not None:
        schedule.last_run_time.FromMilliseconds(found.state.last_run_ms)
    schedule.last_job_id = found.state.last_job_id
    return schedule


def _create_ms(found: StoredSchedule) -> int:
    return int(svc.Schedule.FromString(found.definition).create_time.ToMilliseconds())


def _after(page_token: str) -> str:
    """The last name of the previous page ("" for the first)."""
    if not page_token:
        return ""
    if len(page_token) > 256:
        raise FieldViolation("page_token", "is not a token from a previous ListSchedules page")
    try:
        return base64.urlsafe_b64decode(page_token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise FieldViolation("page_token", "is not a token from a previous ListSchedules page") from error
