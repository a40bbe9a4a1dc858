"""Plain Python views of the contract's messages: what the client returns and accepts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal


class JobState(enum.StrEnum):
    """Where a job is in its life cycle (see docs/state-machine.md)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for the states a job leaves only by an explicit retry."""
        return self in _FINISHED


_FINISHED = frozenset({JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED})


class Priority(enum.StrEnum):
    """Every high job is leased before any normal one, every normal before any low one."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


PriorityName = Priority | Literal["low", "normal", "high"]


class Durability(enum.StrEnum):
    """When the server acknowledges a write (docs/durability.md); None keeps the server's default."""

    #: Redis applied it (in memory and its append-only file's buffer).
    APPLIED = "applied"
    #: Redis confirmed it is fsynced to its append-only file; refused when Redis cannot say so.
    FSYNCED = "fsynced"


DurabilityName = Durability | Literal["applied", "fsynced"]
#: JSON-like values a payload or result may hold (Struct numbers are doubles).
JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How long a failed job waits before its next attempt; None fields take server defaults.

    The wait is ``min(max_delay, initial_delay * multiplier ** (failures - 1))`` minus a
    random fraction up to ``jitter``; ``no_jitter`` makes delays exact (handy in tests).
    """

    initial_delay: timedelta | float | None = None
    max_delay: timedelta | float | None = None
    multiplier: float | None = None
    jitter: float | None = None
    no_jitter: bool = False


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What enqueue returns: the job's id, and whether an idempotency key matched."""

    job_id: str
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job for ``enqueue_many``; the fields mean what ``enqueue``'s arguments mean."""

    queue: str
    payload: Mapping[str, Any] | bytes | None = None
    priority: PriorityName = Priority.NORMAL
    delay: timedelta | float | None = None
    run_at: datetime | None = None
    max_attempts: int | None = None
    idempotency_key: str | None = None
    lease_duration: timedelta | float | None = None
    metadata: Mapping[str, str] | None = None
    backoff: BackoffPolicy | None = None
    #: A batch from ``enqueue_many`` is acknowledged at the strictest level its jobs or the call ask for.
    durability: DurabilityName | None = None


@dataclass(frozen=True, slots=True)
class JobError:
    """One failed attempt in a job's history."""

    attempt: int
    message: str
    time: datetime | None


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job as the server stores it now. Times are timezone-aware (UTC)."""

    id: str
    queue: str
    state: JobState
    #: The JSON payload (empty when the job carries only bytes).
    payload: JsonDict
    payload_bytes: bytes
    priority: Priority
    #: Deliveries so far, counted when the job is leased.
    attempts: int
    max_attempts: int
    create_time: datetime | None
    schedule_time: datetime | None
    start_time: datetime | None
    finish_time: datetime | None
    #: What the worker returned with its ack; None until then (or when it returned nothing).
    result: JsonDict | None
    last_error: str
    errors: list[JobError] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    lease_duration: timedelta | None = None
    backoff: BackoffPolicy | None = None
    idempotency_key: str | None = None
    worker_id: str | None = None

    @property
    def finished(self) -> bool:
        """True once the job is COMPLETED, DEAD or CANCELLED."""
        return self.state.finished


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue's job counts by state."""

    queue: str
    queued: int
    scheduled: int
    active: int
    completed: int
    dead: int
    cancelled: int
    #: Age of the oldest ready job (zero when none is ready).
    oldest_queued_age: timedelta
