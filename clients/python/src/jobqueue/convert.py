"""Conversions between Python values and the contract's messages.

Payloads and results travel as ``google.protobuf.Struct``, whose numbers are doubles (as in
JSON). Integers are checked to fit a double exactly on the way in, and whole numbers come
back as ``int`` on the way out, so ``{"n": 1}`` round-trips as ``{"n": 1}``, not ``1.0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from jobqueue.errors import InvalidArgument
from jobqueue.models import (
    BackoffPolicy,
    DependencyFailure,
    DependencyFailureName,
    Durability,
    DurabilityName,
    JobError,
    JobInfo,
    JobLogLine,
    JobProgress,
    JobState,
    Priority,
    PriorityName,
    QueueLimits,
    QueueStats,
    TokenInfo,
    TokenRole,
    WebhookInfo,
)
from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc

# Largest integer a double holds exactly: beyond it a Struct would silently round.
MAX_SAFE_INTEGER = 2**53

_STATES: dict[job_pb2.JobState.ValueType, JobState] = {
    job_pb2.JOB_STATE_SCHEDULED: JobState.SCHEDULED,
    job_pb2.JOB_STATE_QUEUED: JobState.QUEUED,
    job_pb2.JOB_STATE_ACTIVE: JobState.ACTIVE,
    job_pb2.JOB_STATE_COMPLETED: JobState.COMPLETED,
    job_pb2.JOB_STATE_DEAD: JobState.DEAD,
    job_pb2.JOB_STATE_CANCELLED: JobState.CANCELLED,
    job_pb2.JOB_STATE_WAITING: JobState.WAITING,
}
STATE_NUMBERS = {state: number for number, state in _STATES.items()}
_PRIORITIES: dict[Priority, job_pb2.Priority.ValueType] = {
    Priority.LOW: job_pb2.PRIORITY_LOW,
    Priority.NORMAL: job_pb2.PRIORITY_NORMAL,
    Priority.HIGH: job_pb2.PRIORITY_HIGH,
}
_PRIORITY_NAMES: dict[int, Priority] = {int(number): name for name, number in _PRIORITIES.items()}
_FAILURE_POLICIES: dict[DependencyFailure, job_pb2.DependencyFailurePolicy.ValueType] = {
    DependencyFailure.CANCEL: job_pb2.DEPENDENCY_FAILURE_POLICY_CANCEL,
    DependencyFailure.DEAD_LETTER: job_pb2.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER,
    DependencyFailure.RUN_ANYWAY: job_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY,
}
_FAILURE_POLICY_NAMES = {int(number): name for name, number in _FAILURE_POLICIES.items()}


# -- JSON values <-> Struct -------------------------------------------------------------


def to_struct(value: Mapping[str, Any], what: str = "payload") -> struct_pb2.Struct:
    """A Struct holding `value`; raises InvalidArgument naming the offending path."""
    struct = struct_pb2.Struct()
    fill_struct(struct, value, what)
    return struct


def fill_struct(struct: struct_pb2.Struct, value: Mapping[str, Any], path: str) -> None:
    """Writes `value` into `struct` in one pass (no intermediate dict); raises InvalidArgument
    naming the path of a value JSON cannot carry exactly. Paths are built only for errors."""
    fields = struct.fields
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidArgument(f"{path}: keys must be strings, got {type(key).__name__}", field=path)
        if type(item) is str:  # the most common value, without a call
            fields[key].string_value = item
        else:
            _set_value(fields[key], item, path, key)


def _set_value(target: struct_pb2.Value, value: Any, parent: str, key: str | int) -> None:
    # The common kinds first; bool before int, since a bool is an int.
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _not_json(parent, key, f"{value} is not a JSON number")
        target.number_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise _not_json(parent, key, f"{value} does not fit a JSON number exactly")
        target.number_value = value
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    else:
        _set_container(target, value, parent, key)


def _set_container(target: struct_pb2.Value, value: Any, parent: str, key: str | int) -> None:
    if isinstance(value, Mapping):
        target.struct_value.SetInParent()  # an empty object is still an object
        fill_struct(target.struct_value, value, _path(parent, key))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        target.list_value.SetInParent()
        values, path = target.list_value.values, _path(parent, key)
        for index, item in enumerate(value):
            _set_value(values.add(), item, path, index)
    else:
        raise _not_json(parent, key, f"{type(value).__name__} is not a JSON value")


def _path(parent: str, key: str | int) -> str:
    return f"{parent}[{key}]" if isinstance(key, int) else f"{parent}.{key}"


def _not_json(parent: str, key: str | int, why: str) -> InvalidArgument:
    path = _path(parent, key)
    return InvalidArgument(f"{path}: {why}", field=path)


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """The Struct as plain dicts and lists, whole numbers as int."""
    fields = struct.fields
    # Keys, then one lookup each: the map's items() is a generic, slower ItemsView.
    return {key: _from_value(fields[key]) for key in fields}


def _from_value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) <= MAX_SAFE_INTEGER else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return from_struct(value.struct_value)
    if kind == "list_value":
        return [_from_value(item) for item in value.list_value.values]
    return None


# -- times ------------------------------------------------------------------------------


def seconds(value: timedelta | float) -> float:
    """Seconds in a timedelta or a number of seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def to_duration(value: timedelta | float, what: str) -> duration_pb2.Duration:
    """A Duration from a timedelta or seconds; negative values and other types are refused."""
    if isinstance(value, bool) or not isinstance(value, timedelta | int | float):
        raise InvalidArgument(
            f"{what}: must be a timedelta or seconds, got {type(value).__name__}", field=what
        )
    delta = value if isinstance(value, timedelta) else timedelta(seconds=value)
    if delta < timedelta(0):
        raise InvalidArgument(f"{what}: must not be negative, got {delta}", field=what)
    duration = duration_pb2.Duration()
    duration.FromTimedelta(delta)
    return duration


def to_timestamp(value: datetime, what: str) -> timestamp_pb2.Timestamp:
    """A Timestamp from an aware datetime; naive ones are refused (their zone is a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(f"{what}: must be timezone-aware, e.g. datetime.now(UTC)", field=what)
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(value)
    return timestamp


def from_timestamp(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def _optional_time(message: Any, name: str) -> datetime | None:
    return from_timestamp(getattr(message, name)) if message.HasField(name) else None


# -- enums and policies -----------------------------------------------------------------


def to_priority(value: PriorityName) -> job_pb2.Priority.ValueType:
    try:
        return _PRIORITIES[Priority(value)]
    except ValueError:
        raise InvalidArgument(
            f"priority must be low, normal or high, not {value!r}", field="priority"
        ) from None


def to_dependency_failure(value: DependencyFailureName) -> job_pb2.DependencyFailurePolicy.ValueType:
    try:
        return _FAILURE_POLICIES[DependencyFailure(value)]
    except ValueError:
        raise InvalidArgument(
            f"on_dependency_failure must be cancel, dead_letter or run_anyway, not {value!r}",
            field="on_dependency_failure",
        ) from None


_DURABILITIES: dict[Durability, job_pb2.Durability.ValueType] = {
    Durability.APPLIED: job_pb2.DURABILITY_APPLIED,
    Durability.FSYNCED: job_pb2.DURABILITY_FSYNCED,
    Durability.REPLICATED: job_pb2.DURABILITY_REPLICATED,
}


def priority_of(value: int) -> Priority:
    """The Priority of a message's value; unset (or one this client does not know) is normal."""
    return _PRIORITY_NAMES.get(value, Priority.NORMAL)


def to_durability(value: DurabilityName | None, what: str = "durability") -> job_pb2.Durability.ValueType:
    """The level to send; None leaves it unset, so the server applies its default."""
    if value is None:
        return job_pb2.DURABILITY_UNSPECIFIED
    try:
        return _DURABILITIES[Durability(value)]
    except ValueError:
        raise InvalidArgument(f"{what} must be applied or fsynced, not {value!r}", field=what) from None


def to_backoff(policy: BackoffPolicy) -> job_pb2.BackoffPolicy:
    message = job_pb2.BackoffPolicy(
        multiplier=policy.multiplier or 0.0, jitter=policy.jitter or 0.0, no_jitter=policy.no_jitter
    )
    if policy.initial_delay is not None:
        message.initial_delay.CopyFrom(to_duration(policy.initial_delay, "backoff.initial_delay"))
    if policy.max_delay is not None:
        message.max_delay.CopyFrom(to_duration(policy.max_delay, "backoff.max_delay"))
    return message


def from_backoff(message: job_pb2.BackoffPolicy) -> BackoffPolicy:
    return BackoffPolicy(
        initial_delay=message.initial_delay.ToTimedelta() if message.HasField("initial_delay") else None,
        max_delay=message.max_delay.ToTimedelta() if message.HasField("max_delay") else None,
        multiplier=message.multiplier or None,
        jitter=message.jitter,
        no_jitter=message.no_jitter,
    )


# -- messages -> models -----------------------------------------------------------------


def job_info(job: job_pb2.Job, payload: dict[str, Any] | None = None) -> JobInfo:
    """The typed view of a Job message (with `payload` when it was converted already)."""
    return JobInfo(
        id=job.id,
        queue=job.queue,
        state=_STATES[job.state],
        payload=from_struct(job.payload) if payload is None else payload,
        payload_bytes=job.payload_bytes,
        priority=priority_of(job.priority),
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        create_time=_optional_time(job, "create_time"),
        schedule_time=_optional_time(job, "schedule_time"),
        start_time=_optional_time(job, "start_time"),
        finish_time=_optional_time(job, "finish_time"),
        result=from_struct(job.result) if job.HasField("result") else None,
        last_error=job.last_error,
        errors=[JobError(e.attempt, e.message, _optional_time(e, "time")) for e in job.errors],
        metadata=dict(job.metadata),
        lease_duration=job.lease_duration.ToTimedelta() if job.HasField("lease_duration") else None,
        backoff=from_backoff(job.backoff) if job.HasField("backoff") else None,
        idempotency_key=job.idempotency_key or None,
        worker_id=job.worker_id or None,
        execution_timeout=job.timeout.ToTimedelta() if job.HasField("timeout") else None,
        start_deadline=_optional_time(job, "start_deadline"),
        unique_key=job.unique_key or None,
        progress=(
            JobProgress(job.progress.percent, job.progress.message, _optional_time(job.progress, "time"))
            if job.HasField("progress")
            else None
        ),
        logs=[JobLogLine(entry.line, _optional_time(entry, "time")) for entry in job.logs],
        group_key=job.group_key or None,
        depends_on=list(job.depends_on),
        on_dependency_failure=_FAILURE_POLICY_NAMES.get(job.on_dependency_failure),
    )


def queue_stats(stats: job_pb2.QueueStats) -> QueueStats:
    return QueueStats(
        queue=stats.queue,
        queued=stats.queued,
        scheduled=stats.scheduled,
        active=stats.active,
        completed=stats.completed,
        dead=stats.dead,
        cancelled=stats.cancelled,
        oldest_queued_age=stats.oldest_queued_age.ToTimedelta(),
        paused=stats.paused,
        waiting=stats.waiting,
        partitions=stats.partitions or 1,
        limits=(
            QueueLimits(
                stats.limits.rate_per_second,
                stats.limits.burst,
                stats.limits.max_active,
                stats.limits.group_rate_per_second,
                stats.limits.group_burst,
                stats.limits.group_max_active,
            )
            if stats.HasField("limits")
            else None
        ),
    )


_TOKEN_ROLES: dict[TokenRole, svc.TokenRole.ValueType] = {
    "producer": svc.TOKEN_ROLE_PRODUCER,
    "worker": svc.TOKEN_ROLE_WORKER,
    "admin": svc.TOKEN_ROLE_ADMIN,
}
_TOKEN_ROLE_NAMES = {value: name for name, value in _TOKEN_ROLES.items()}


def to_token_role(role: TokenRole) -> svc.TokenRole.ValueType:
    if role not in _TOKEN_ROLES:
        raise InvalidArgument(f"role: must be producer, worker or admin, got {role!r}", field="role")
    return _TOKEN_ROLES[role]


def webhook_info(message: svc.Webhook) -> WebhookInfo:
    return WebhookInfo(
        webhook_id=message.id,
        url=message.url,
        queue=message.queue or None,
        oldest_job_age=message.oldest_job_age.ToTimedelta() if message.HasField("oldest_job_age") else None,
        dead_jobs=message.dead_jobs,
        allow_private_network=message.allow_private_network,
        created_at=from_timestamp(message.create_time),
    )


def token_info(message: svc.TokenInfo) -> TokenInfo:
    return TokenInfo(
        token_id=message.token_id,
        name=message.name,
        role=_TOKEN_ROLE_NAMES[message.role],
        queues=tuple(message.queues),
        created_at=from_timestamp(message.create_time),
        expires_at=_optional_time(message, "expire_time"),
    )
