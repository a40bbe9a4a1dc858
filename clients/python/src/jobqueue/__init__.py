"""Python client for the jobqueue gRPC service: producers (sync and asyncio) and workers.

::

    from jobqueue import AsyncClient, Client, Worker
"""

from jobqueue.backoff import ReconnectBackoff
from jobqueue.batching import Batching
from jobqueue.client import AsyncClient
from jobqueue.context import JobContext
from jobqueue.counters import WorkerCounters
from jobqueue.errors import (
    AlreadyExists,
    DeadlineExceeded,
    DurabilityUnavailable,
    FailedPrecondition,
    FsyncNotConfirmed,
    Internal,
    InvalidArgument,
    JobQueueError,
    LeaseLost,
    NonRetryableError,
    NotFound,
    PermissionDenied,
    QueueLimitReached,
    QueueNotAllowed,
    ResourceExhausted,
    RetryAfter,
    RoleNotAllowed,
    ScheduleExists,
    ScheduleLimitReached,
    ScheduleNotFound,
    ServerShuttingDown,
    StoreFull,
    StoreUnavailable,
    TokenExpired,
    TokenInvalid,
    TokenLimitReached,
    TokenMissing,
    TokenNotFound,
    Unauthenticated,
    Unavailable,
    WrongState,
)
from jobqueue.handlers import AsyncHandler, Handler, SyncHandler
from jobqueue.models import (
    BackoffPolicy,
    Durability,
    EnqueueOptions,
    EnqueueResult,
    JobError,
    JobInfo,
    JobSpec,
    JobState,
    NewToken,
    Priority,
    QueueStats,
    TokenInfo,
    TokenRole,
)
from jobqueue.schedules import Schedule
from jobqueue.security import Tls
from jobqueue.sync_client import Client
from jobqueue.worker import Worker

__all__ = [
    "AlreadyExists",
    "AsyncClient",
    "AsyncHandler",
    "BackoffPolicy",
    "Batching",
    "Client",
    "DeadlineExceeded",
    "Durability",
    "DurabilityUnavailable",
    "EnqueueOptions",
    "EnqueueResult",
    "FailedPrecondition",
    "FsyncNotConfirmed",
    "Handler",
    "Internal",
    "InvalidArgument",
    "JobContext",
    "JobError",
    "JobInfo",
    "JobQueueError",
    "JobSpec",
    "JobState",
    "LeaseLost",
    "NewToken",
    "NonRetryableError",
    "NotFound",
    "PermissionDenied",
    "Priority",
    "QueueLimitReached",
    "QueueNotAllowed",
    "QueueStats",
    "ReconnectBackoff",
    "ResourceExhausted",
    "RetryAfter",
    "RoleNotAllowed",
    "Schedule",
    "ScheduleExists",
    "ScheduleLimitReached",
    "ScheduleNotFound",
    "ServerShuttingDown",
    "StoreFull",
    "StoreUnavailable",
    "SyncHandler",
    "Tls",
    "TokenExpired",
    "TokenInfo",
    "TokenInvalid",
    "TokenLimitReached",
    "TokenMissing",
    "TokenNotFound",
    "TokenRole",
    "Unauthenticated",
    "Unavailable",
    "Worker",
    "WorkerCounters",
    "WrongState",
]
