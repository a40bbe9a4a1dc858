"""Plain Python views of the contract's messages: what the client returns and accepts."""

# No `from __future__ import annotations`: on Python 3.11 it hides Required[] from TypedDict,
# and JobSpec.__required_keys__ would come out empty.

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Required, TypedDict


class JobState(enum.StrEnum):
    """Where a job is in its life cycle (see docs/state-machine.md)."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    #: Waiting for the jobs it depends on (``depends_on``) to complete.
    WAITING = "waiting"

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
    #: The primary's replicas confirmed they have it; refused when it has too few replicas.
    REPLICATED = "replicated"


DurabilityName = Durability | Literal["applied", "fsynced", "replicated"]


class DependencyFailure(enum.StrEnum):
    """What a waiting job becomes when a job it depends on ends dead or cancelled."""

    #: It ends cancelled, with the error "dependency <id> ended DEAD" (the default).
    CANCEL = "cancel"
    #: It ends dead, in the dead-letter set, with the same error.
    DEAD_LETTER = "dead_letter"
    #: The failed dependency counts as done: it runs once every dependency has ended.
    RUN_ANYWAY = "run_anyway"


DependencyFailureName = DependencyFailure | Literal["cancel", "dead_letter", "run_anyway"]
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


class EnqueueOptions(TypedDict, total=False):
    """What a job may ask for besides its queue and payload: the keyword arguments of
    ``enqueue`` and the keys of each ``enqueue_many`` job. Declared once, here; every key is
    optional, and None (or leaving it out) takes the server's default."""

    #: Every high job is leased before any normal one (the default), every normal before any low.
    priority: PriorityName
    #: Seconds or a timedelta before the job may run; give at most one of delay and run_at.
    delay: timedelta | float | None
    #: When the job may run: a timezone-aware datetime.
    run_at: datetime | None
    #: Deliveries before the job is dead (server default: 3).
    max_attempts: int | None
    #: A second enqueue with this key, within the server's window, returns the first job.
    idempotency_key: str | None
    #: How long a worker holds the job before the server takes it back, unless extended.
    lease_duration: timedelta | float | None
    #: Strings the worker receives with the job (trace context, tenant, ...).
    metadata: Mapping[str, str] | None
    #: The wait between failed attempts.
    backoff: BackoffPolicy | None
    #: "fsynced" returns only once Redis has the job on disk (docs/durability.md). A batch from
    #: ``enqueue_many`` is acknowledged at the strictest level its jobs or the call ask for.
    durability: DurabilityName | None
    #: Longest an attempt may run (seconds or a timedelta, 1 s to 7 days): past it the worker is
    #: told to stop and the attempt fails as timed out, however often its lease is extended.
    execution_timeout: timedelta | float | None
    #: A job no worker has started by this time (an aware datetime) ends CANCELLED.
    start_deadline: datetime | None
    #: While a job of the queue with this key is scheduled, queued or running, enqueueing
    #: another with it returns that job (``duplicate``) instead of making one.
    unique_key: str | None
    #: Ids of jobs (in any queue) that must complete before this one runs: it waits in the
    #: "waiting" state until then (docs/dependencies.md).
    depends_on: Sequence[str] | None
    #: What becomes of it when one of them ends dead or cancelled (default "cancel").
    on_dependency_failure: DependencyFailureName | None
    #: Its group (the customer, the mail domain...): a queue serves its groups in turn, so a
    #: group with many jobs waiting does not hold back the others; the queue's group limits
    #: (``set_queue_limits(group_max_active=...)``) bound each group.
    group_key: str | None
    #: On a queue with partitions (``create_queue``): jobs with the same key go to the same
    #: partition, so they are leased in the order they were enqueued.
    partition_key: str | None


class JobSpec(EnqueueOptions, total=False):
    """One job for ``enqueue_many``: ``JobSpec(queue="emails", payload={...}, priority="high")``
    or a plain dict with the same keys."""

    queue: Required[str]
    #: A JSON object, or bytes the worker receives as they are.
    payload: Mapping[str, Any] | bytes | None
    #: A name other jobs of the same ``enqueue_many`` call depend on it by (``depends_on_refs``).
    ref: str | None
    #: The refs of jobs of the same call that must complete before this one runs. A graph must
    #: fit in one call (1,000 jobs); a cycle is refused, and nothing of the call is written.
    depends_on_refs: Sequence[str] | None


#: Every key a JobSpec may have.
JOB_SPEC_KEYS = JobSpec.__required_keys__ | JobSpec.__optional_keys__


@dataclass(frozen=True, slots=True)
class JobError:
    """One failed attempt in a job's history."""

    attempt: int
    message: str
    time: datetime | None


@dataclass(frozen=True, slots=True)
class JobProgress:
    """How far a running job said it is (``ctx.progress``)."""

    percent: float
    message: str
    time: datetime | None


@dataclass(frozen=True, slots=True)
class JobLogLine:
    """One line a job's handler logged (``ctx.log``)."""

    line: str
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
    execution_timeout: timedelta | None = None
    start_deadline: datetime | None = None
    unique_key: str | None = None
    #: The latest progress its handler reported, and the last 100 lines it logged.
    progress: JobProgress | None = None
    logs: list[JobLogLine] = field(default_factory=list)
    #: Its group, given at enqueue.
    group_key: str | None = None
    #: The jobs it waited for: a handler reads their results with ``client.get(id)``.
    depends_on: list[str] = field(default_factory=list)
    on_dependency_failure: DependencyFailure | None = None

    @property
    def finished(self) -> bool:
        """True once the job is COMPLETED, DEAD or CANCELLED."""
        return self.state.finished


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """How fast and how much of a queue runs, on every server (0: no limit of that kind)."""

    #: Most jobs leased per second on average, with up to `burst` at once after a pause.
    rate_per_second: float = 0.0
    burst: int = 0
    #: Most jobs active at once.
    max_active: int = 0
    #: The same for each group of the queue (``group_key``), each on its own.
    group_rate_per_second: float = 0.0
    group_burst: int = 0
    group_max_active: int = 0


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
    #: Whether the queue is paused (`pause_queue`): its ready jobs are not leased.
    paused: bool = False
    #: Its flow limits (`set_queue_limits`), or None.
    limits: QueueLimits | None = None
    #: Jobs waiting for the jobs they depend on.
    waiting: int = 0
    #: How many partitions the queue has (``create_queue``).
    partitions: int = 1


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as ``create_queue`` left it."""

    queue: str
    partitions: int
    #: Whether the call registered the queue or added partitions to it.
    changed: bool


TokenRole = Literal["producer", "worker", "admin"]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as ListTokens describes it: never its secret."""

    token_id: str
    name: str
    role: TokenRole
    #: Shell-style patterns of the queues it may touch; ``*`` is every queue.
    queues: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just created: ``token`` is the secret bearer text, shown this once."""

    token: str
    info: TokenInfo


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    """A webhook: where the servers POST failure alerts (docs/monitoring.md)."""

    webhook_id: str
    url: str
    #: The queue it hears of; None: every queue.
    queue: str | None
    #: Alert when a queue's oldest ready job waited longer than this; None: never.
    oldest_job_age: timedelta | None
    #: Alert when a queue holds at least this many dead jobs; 0: never.
    dead_jobs: int
    allow_private_network: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewWebhook:
    """A webhook just created: ``secret`` signs every delivery, shown this once."""

    secret: str
    info: WebhookInfo


class ListFilters(TypedDict, total=False):
    """Which jobs ``list_jobs`` keeps, applied by the server: enqueued at or after
    `created_after` and before `created_before` (aware datetimes), holding every pair of
    `metadata`."""

    created_after: datetime
    created_before: datetime
    metadata: Mapping[str, str]
