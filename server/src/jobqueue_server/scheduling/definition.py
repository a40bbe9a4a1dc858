"""A schedule's definition read from its Schedule message: when it ticks, what it makes, and
what it does with missed ticks. Refusals name the field (`schedule.cron`, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.errors import FieldViolation
from jobqueue_server.scheduling.timing import BadTiming, Timing, cron_problem, zone

NAME_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MIN_INTERVAL_MS = 1000
MAX_INTERVAL_MS = 10 * 366 * 24 * 3600 * 1000
DEFAULT_CATCH_UP_LIMIT = 100
MAX_CATCH_UP_LIMIT = 1000
# A tick more than this late is missed: the catch-up policy says what becomes of it.
MISFIRE_GRACE_MS = 60_000
# Timestamps a schedule may name: years 1970 to 9999.
_MAX_TIMESTAMP_S = 253402300799


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    timing: Timing
    template: svc.EnqueueRequest  # the template as the request each tick sends
    catch_up: int  # a CatchUpPolicy value, never UNSPECIFIED
    catch_up_limit: int
    paused: bool

    def ticks_due(self, cursor_ms: int, now_ms: int) -> list[int]:
        """The ticks in (cursor, now] that make a job, oldest first, by the catch-up policy."""
        on_time = self.timing.latest(now_ms, max(cursor_ms, now_ms - MISFIRE_GRACE_MS), MAX_CATCH_UP_LIMIT)
        if self.catch_up == svc.CATCH_UP_POLICY_ALL:
            return self.timing.latest(now_ms, cursor_ms, self.catch_up_limit)
        if self.catch_up == svc.CATCH_UP_POLICY_ONCE and now_ms - MISFIRE_GRACE_MS > cursor_ms:
            return self.timing.latest(now_ms - MISFIRE_GRACE_MS, cursor_ms, 1) + on_time
        return on_time


def name(value: str, field: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise FieldViolation(field, "must be 1 to 128 of letters, digits, '-', '_', '.' and ':'")
    return value


def stored(schedule: svc.Schedule, *, paused: bool, create_ms: int, update_ms: int) -> svc.Schedule:
    """The message kept in Redis: the definition, the pause flag and the two dates."""
    kept = svc.Schedule()
    kept.CopyFrom(schedule)
    kept.ClearField("next_run_time")
    kept.ClearField("last_run_time")
    kept.ClearField("last_job_id")
    kept.paused = paused
    kept.create_time.FromMilliseconds(create_ms)
    kept.update_time.FromMilliseconds(update_ms)
    return kept


def read(schedule: svc.Schedule, prefix: str = "schedule.") -> Definition:
    """The definition of `schedule`, or FieldViolation naming what is wrong."""
    timing = _timing(schedule, prefix)
    if not schedule.HasField("template") or not schedule.template.queue:
        raise FieldViolation(f"{prefix}template.queue", "is required: the queue each tick's job goes to")
    catch_up = schedule.catch_up or svc.CATCH_UP_POLICY_SKIP
    if catch_up not in svc.CatchUpPolicy.values():
        raise FieldViolation(f"{prefix}catch_up", "is not a known catch-up policy")
    limit = schedule.catch_up_limit or DEFAULT_CATCH_UP_LIMIT
    if not 1 <= limit <= MAX_CATCH_UP_LIMIT:
        raise FieldViolation(
            f"{prefix}catch_up_limit", f"must be 0 (the default, 100) to {MAX_CATCH_UP_LIMIT}"
        )
    # JobTemplate numbers its fields as EnqueueRequest does: its bytes are an EnqueueRequest.
    template = svc.EnqueueRequest.FromString(schedule.template.SerializeToString())
    return Definition(
        name=name(schedule.name, f"{prefix}name"),
        timing=timing,
        template=template,
        catch_up=catch_up,
        catch_up_limit=limit,
        paused=schedule.paused,
    )


def _timing(schedule: svc.Schedule, prefix: str) -> Timing:
    timing_field = schedule.WhichOneof("timing")
    if timing_field is None:
        raise FieldViolation(f"{prefix}cron", "set either cron or interval")
    start_ms = _timestamp_ms(schedule, "start_time", prefix)
    end_ms = _timestamp_ms(schedule, "end_time", prefix)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise FieldViolation(f"{prefix}end_time", "must be after start_time")
    if timing_field == "cron":
        problem = cron_problem(schedule.cron)
        if problem is not None:
            raise FieldViolation(f"{prefix}cron", problem)
        try:
            tz = zone(schedule.time_zone)
        except BadTiming as error:
            raise FieldViolation(f"{prefix}time_zone", str(error)) from error
        return Timing(cron=schedule.cron.strip(), zone=tz, start_ms=start_ms, end_ms=end_ms)
    if schedule.time_zone:
        raise FieldViolation(f"{prefix}time_zone", "applies to cron only: an interval is in real time")
    interval = schedule.interval
    interval_ms = interval.seconds * 1000 + interval.nanos // 1_000_000
    if interval.nanos % 1_000_000 or not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
        raise FieldViolation(f"{prefix}interval", "must be whole milliseconds from 1 s to 10 years")
    return Timing(interval_ms=interval_ms, start_ms=start_ms, end_ms=end_ms)


def _timestamp_ms(
    schedule: svc.Schedule, field: Literal["start_time", "end_time"], prefix: str
) -> int | None:
    if not schedule.HasField(field):
        return None
    value = getattr(schedule, field)
    if not 0 <= value.seconds <= _MAX_TIMESTAMP_S or not 0 <= value.nanos < 1_000_000_000:
        raise FieldViolation(f"{prefix}{field}", "must be a time from 1970 to 9999")
    return int(value.ToMilliseconds())
