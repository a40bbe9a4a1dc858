"""Plain records the store takes and returns; a job's wire bytes and results are opaque here.

`wire` is the job's immutable part, serialized by the api layer at enqueue (the store never
reads it): the store keeps it as it is and hands it back with the fields that change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Priority(enum.IntEnum):
    """Stored as its number; the values match jobqueue.v1.Priority."""

    LOW = 1
    NORMAL = 2
    HIGH = 3


class JobState(enum.StrEnum):
    """Stored as its name in the job's record (store/layout.py)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    WAITING = "waiting"


class DependencyFailure(enum.IntEnum):
    """What a WAITING job becomes when a job it depends on fails; values as the proto's and
    as the job's `parents` hash keeps them (docs/dependencies.md)."""

    CANCEL = 1
    DEAD_LETTER = 2
    RUN_ANYWAY = 3


class Durability(enum.IntEnum):
    """When a write is acknowledged; ordered from weakest to strictest, values as in the proto."""

    #: Redis applied the write (in memory, queued for its append-only file).
    APPLIED = 1
    #: Redis confirmed (WAITAOF) that the write is fsynced to its append-only file.
    FSYNCED = 2
    #: The primary's replicas confirmed (WAIT) that they have the write.
    REPLICATED = 3


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


@dataclass(slots=True)  # made for every job: frozen's __init__ costs twice as much
class NewJob:
    """A job to enqueue, already validated; `ulid` and `wire` as the api layer made them (the
    store makes a ulid when none is given)."""

    queue: str
    ulid: str = ""
    wire: bytes = b""
    priority: Priority = Priority.NORMAL
    delay_ms: int = 0
    due_ms: int | None = None
    max_attempts: int = 3
    backoff: Backoff = Backoff()
    lease_ms: int = 0
    idempotency_key: str = ""
    timeout_ms: int = 0
    start_deadline_ms: int = 0
    unique_key: str = ""
    #: The job ids it waits for (WAITING until each is COMPLETED), and what a failed one does.
    depends_on: tuple[str, ...] = ()
    on_dependency_failure: DependencyFailure = DependencyFailure.CANCEL
    #: Its group (round-robin between groups, per-group limits); "" for none.
    group_key: str = ""

    @property
    def dependencies(self) -> str:
        """What the enqueue script takes of them: "<policy>|<id> <id> ...", or "" for none
        (job ids hold no space: queue names cannot)."""
        if not self.depends_on:
            return ""
        return f"{int(self.on_dependency_failure)}|{' '.join(self.depends_on)}"

    @property
    def limits(self) -> str:
        """What the enqueue script keeps in `deadlines`: "timeout|start deadline|unique key", or
        "" when the job has none of them."""
        if not (self.timeout_ms or self.start_deadline_ms or self.unique_key):
            return ""
        return f"{self.timeout_ms or ''}|{self.start_deadline_ms or ''}|{self.unique_key}"


@dataclass(slots=True)  # made for every job: frozen's __init__ costs twice as much
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
    wire: bytes = b""
    attempts: int = 0
    max_attempts: int = 0
    create_ms: int = 0
    due_ms: int = 0
    start_ms: int = 0
    finish_ms: int = 0
    result: bytes = b""
    last_error: str = ""
    errors: list[ErrorEntry] = field(default_factory=list)
    lease_ms: int = 0
    backoff: Backoff = Backoff()
    worker_id: str = ""
    lease_expire_ms: int = 0
    #: The latest progress reported (`percent|ms|message`) and the log (`ms|line` lines), raw.
    progress: bytes = b""
    logs: bytes = b""
    #: Only for a job hash of the previous layout read by the migration (store/migrate.py): the
    #: whole hash of a job stored before `wire` existed, from which the api layer builds its
    #: wire bytes; None for every other job.
    legacy: dict[bytes, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """A handler's report on a job it holds: progress (percent None: keep it) and log lines."""

    job_id: str
    token: str
    percent: float | None
    message: str
    lines: tuple[str, ...]


@dataclass(slots=True)  # made for every job: frozen's __init__ costs twice as much
class LeasedJob:
    """One job of a lease, as the lease script answers it: the stored wire bytes and the
    fields that change."""

    job_id: str
    token: str
    lease_expire_ms: int
    wire: bytes
    attempts: int
    due_ms: int
    create_ms: int
    last_error: bytes
    errors: bytes


@dataclass(frozen=True, slots=True)
class Lease:
    """What one lease call gave a stream: when it started, for whom, and the jobs."""

    start_ms: int
    worker_id: str
    jobs: list[LeasedJob]
    #: When a queue limit held ready jobs back: when to lease again (ms, Redis's clock; 0:
    #: once an active job ends, which signals the queue). -1: nothing was held back.
    retry_ms: int = -1


@dataclass(slots=True)  # made for every job: frozen's __init__ costs twice as much
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
    #: How long the handler ran, as the worker reported with its ack or fail (for metrics).
    handler_ms: int | None = None


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
    paused: bool = False
    limits: QueueLimits | None = None
    waiting: int = 0
    partitions: int = 1


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """A queue's flow limits (0: none of that kind)."""

    rate_per_second: float = 0.0
    burst: int = 0
    max_active: int = 0
    #: The same for each group of the queue (EnqueueRequest.group_key).
    group_rate_per_second: float = 0.0
    group_burst: int = 0
    group_max_active: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.rate_per_second
            or self.burst
            or self.max_active
            or self.group_rate_per_second
            or self.group_burst
            or self.group_max_active
        )
