"""Recurring jobs: the Schedule a client reads back, and the messages made from its arguments
(docs/schedules.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict

from jobqueue import convert, messages
from jobqueue.errors import InvalidArgument
from jobqueue.models import BackoffPolicy, EnqueueOptions, Priority, PriorityName
from jobqueue.v1 import job_queue_service_pb2 as svc

CatchUp = Literal["skip", "once", "all"]
_CATCH_UP: dict[CatchUp, svc.CatchUpPolicy.ValueType] = {
    "skip": svc.CATCH_UP_POLICY_SKIP,
    "once": svc.CATCH_UP_POLICY_ONCE,
    "all": svc.CATCH_UP_POLICY_ALL,
}
_CATCH_UP_NAMES: dict[int, CatchUp] = {value: name for name, value in _CATCH_UP.items()}
# The job options a template takes: those of enqueue that make sense for every tick.
_TEMPLATE_OPTIONS = frozenset(
    {"priority", "max_attempts", "lease_duration", "metadata", "backoff", "execution_timeout", "unique_key"}
)


class TemplateOptions(TypedDict, total=False):
    """The options of each job a schedule makes, as ``enqueue`` takes them."""

    priority: PriorityName
    max_attempts: int | None
    lease_duration: timedelta | float | None
    metadata: Mapping[str, str] | None
    backoff: BackoffPolicy | None
    execution_timeout: timedelta | float | None
    unique_key: str | None


_TIMING_OPTIONS = frozenset({"cron", "every", "time_zone", "start", "end", "catch_up", "catch_up_limit"})


class ScheduleOptions(TemplateOptions, total=False):
    """When a schedule ticks and what it does after downtime, besides its job's options: the
    keyword arguments of ``create_schedule`` and ``update_schedule``."""

    #: 5 fields, or 6 with seconds first, read in `time_zone` (default UTC). Or `every`.
    cron: str | None
    #: A fixed interval (seconds or a timedelta). Or `cron`.
    every: timedelta | float | None
    time_zone: str | None
    #: No tick before `start` nor after `end` (aware datetimes).
    start: datetime | None
    end: datetime | None
    #: What ticks missed during downtime make: nothing ("skip", the default), one job
    #: ("once"), or one each up to `catch_up_limit` ("all").
    catch_up: CatchUp
    catch_up_limit: int


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as the server keeps it: its definition, and its next and last run."""

    name: str
    #: The cron expression (5 fields, or 6 with seconds first), or None for an interval.
    cron: str | None
    #: The fixed interval, or None for a cron expression.
    every: timedelta | None
    #: The IANA zone of the cron expression ("" is UTC).
    time_zone: str
    queue: str
    payload: dict[str, Any] | None
    payload_bytes: bytes
    priority: Priority
    max_attempts: int
    metadata: dict[str, str]
    start: datetime | None
    end: datetime | None
    catch_up: CatchUp
    catch_up_limit: int
    paused: bool
    #: The next tick; None when paused or past its end.
    next_run_at: datetime | None
    #: The latest tick that made a job, and that job's id.
    last_run_at: datetime | None
    last_job_id: str
    created_at: datetime
    updated_at: datetime


def schedule_message(name: str, queue: str, payload: object, given: ScheduleOptions) -> svc.Schedule:
    """The Schedule message of ``create_schedule``'s arguments; InvalidArgument naming the
    argument for a malformed one."""
    cron, every, catch_up = given.get("cron"), given.get("every"), given.get("catch_up", "skip")
    if (cron is None) == (every is None):
        raise InvalidArgument("give exactly one of cron and every", field="cron")
    unknown = sorted(set(given) - _TEMPLATE_OPTIONS - _TIMING_OPTIONS)
    if unknown:
        raise InvalidArgument(f"unknown schedule option {unknown[0]!r}", field=unknown[0])
    if catch_up not in _CATCH_UP:
        raise InvalidArgument(f"catch_up: must be skip, once or all, got {catch_up!r}", field="catch_up")
    options = {key: value for key, value in given.items() if key in _TEMPLATE_OPTIONS}
    request = messages.build_request(queue, payload, EnqueueOptions(**options))  # type: ignore[typeddict-item]
    # JobTemplate numbers its fields as EnqueueRequest does, so the request's bytes are a template.
    schedule = svc.Schedule(
        name=name,
        template=svc.JobTemplate.FromString(request.SerializeToString()),
        time_zone=given.get("time_zone") or "",
        catch_up=_CATCH_UP[catch_up],
        catch_up_limit=given.get("catch_up_limit", 0),
    )
    if cron is not None:
        schedule.cron = cron
    if every is not None:
        schedule.interval.CopyFrom(convert.to_duration(every, "every"))
    if (start := given.get("start")) is not None:
        schedule.start_time.CopyFrom(convert.to_timestamp(start, "start"))
    if (end := given.get("end")) is not None:
        schedule.end_time.CopyFrom(convert.to_timestamp(end, "end"))
    return schedule


def schedule_of(message: svc.Schedule) -> Schedule:
    template = message.template
    return Schedule(
        name=message.name,
        cron=message.cron if message.WhichOneof("timing") == "cron" else None,
        every=message.interval.ToTimedelta() if message.WhichOneof("timing") == "interval" else None,
        time_zone=message.time_zone,
        queue=template.queue,
        payload=convert.from_struct(template.payload) if template.HasField("payload") else None,
        payload_bytes=template.payload_bytes,
        priority=convert.priority_of(template.priority),
        max_attempts=template.max_attempts,
        metadata=dict(template.metadata),
        start=_time(message, "start_time"),
        end=_time(message, "end_time"),
        catch_up=_CATCH_UP_NAMES.get(message.catch_up, "skip"),
        catch_up_limit=message.catch_up_limit,
        paused=message.paused,
        next_run_at=_time(message, "next_run_time"),
        last_run_at=_time(message, "last_run_time"),
        last_job_id=message.last_job_id,
        created_at=convert.from_timestamp(message.create_time),
        updated_at=convert.from_timestamp(message.update_time),
    )


def _time(
    message: svc.Schedule, field: Literal["start_time", "end_time", "next_run_time", "last_run_time"]
) -> datetime | None:
    return convert.from_timestamp(getattr(message, field)) if message.HasField(field) else None
