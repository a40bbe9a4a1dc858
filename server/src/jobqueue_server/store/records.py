"""Plain records the store takes and returns; payloads and results are opaque bytes."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Priority(enum.IntEnum):
    """Stored as its number; the values match jobqueue.v1.Priority."""

    LOW = 1
    NORMAL = 2
    HIGH = 3


class JobState(enum.StrEnum):
    """Stored as its name in the job hash's `state` field."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"


class Durability(enum.IntEnum):
    """When a write is acknowledged; ordered from weakest to strictest, values as in the proto."""

    #: Redis applied the write (in memory, queued for its append-only file).
    APPLIED = 1
    #: Redis confirmed (WAITAOF) that the write is fsynced to its append-only file.
    FSYNCED = 2


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delay: min(max_ms, initial_ms * multiplier^(failures-1)) less up to `jitter` of it."""

    initial_ms: int = 1_000
    max_ms: int = 3_600_000
    multiplier: float = 2.0
    jitter: float = 0.2

    def encode(self) -> str:
        return f"{self.initial_ms},{self.max_ms},{self.multiplier!r},{self.jitter!r}"

    @classmethod
    def decode(cls, text: str) -> Backoff:
        initial, cap, mult, jitter = text.split(",")
        return cls(int(initial), int(cap), float(mult), float(jitter))


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to enqueue, already validated."""

    queue: str
    payload: bytes = b""
    payload_bytes: bytes = b""
    priority: Priority = Priority.NORMAL
    delay_ms: int = 0
    due_ms: int | None = None
    max_attempts: int = 3
    backoff: Backoff = Backoff()
    lease_ms: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class EnqueueOutcome:
    job_id: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    attempt: int
    message: str
    time_ms: int


@dataclass(slots=True)
class JobRecord:
    """A job as stored. Times are Unix ms; 0 means unset."""

    id: str
    queue: str
    state: JobState
    priority: Priority
    payload: bytes = b""
    payload_bytes: bytes = b""
    attempts: int = 0
    max_attempts: int = 0
    create_ms: int = 0
    due_ms: int = 0
    start_ms: int = 0
    finish_ms: int = 0
    result: bytes = b""
    last_error: str = ""
    errors: list[ErrorEntry] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    lease_ms: int = 0
    backoff: Backoff = Backoff()
    idempotency_key: str = ""
    worker_id: str = ""
    lease_expire_ms: int = 0


@dataclass(slots=True)
class LeasedRecord:
    job: JobRecord
    token: str
    lease_expire_ms: int


@dataclass(frozen=True, slots=True)
class Settle:
    """One ack, fail or extend of a lease. Unused fields keep their defaults."""

    job_id: str
    token: str
    result: bytes = b""
    error: str = ""
    non_retryable: bool = False
    retry_delay_ms: int = -1
    lease_ms: int = 0
    #: Honoured by ack only: the level at which the ack is confirmed.
    durability: Durability = Durability.APPLIED


@dataclass(frozen=True, slots=True)
class FailOutcome:
    state: JobState
    due_ms: int


@dataclass(frozen=True, slots=True)
class ExtendOutcome:
    lease_expire_ms: int


@dataclass(frozen=True, slots=True)
class QueueCounts:
    queue: str
    queued: int
    scheduled: int
    active: int
    completed: int
    dead: int
    cancelled: int
    oldest_queued_age_ms: int
