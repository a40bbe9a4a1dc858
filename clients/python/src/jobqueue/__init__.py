"""Python client for the jobqueue gRPC service: producers (sync and asyncio) and workers.

::

    from jobqueue import AsyncClient, Client, Worker
"""

from jobqueue.backoff import ReconnectBackoff
from jobqueue.client import AsyncClient
from jobqueue.context import JobContext
from jobqueue.counters import WorkerCounters
from jobqueue.errors import (
    DeadlineExceeded,
    InvalidArgument,
    JobQueueError,
    LeaseLost,
    NonRetryableError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RetryAfter,
    Unauthenticated,
    Unavailable,
    WrongState,
)
from jobqueue.handlers import AsyncHandler, Handler, SyncHandler
from jobqueue.models import (
    BackoffPolicy,
    Durability,
    EnqueueResult,
    JobError,
    JobInfo,
    JobSpec,
    JobState,
    Priority,
    QueueStats,
)
from jobqueue.sync_client import Client
from jobqueue.worker import Worker

__all__ = [
    "AsyncClient",
    "AsyncHandler",
    "BackoffPolicy",
    "Client",
    "DeadlineExceeded",
    "Durability",
    "EnqueueResult",
    "Handler",
    "InvalidArgument",
    "JobContext",
    "JobError",
    "JobInfo",
    "JobQueueError",
    "JobSpec",
    "JobState",
    "LeaseLost",
    "NonRetryableError",
    "NotFound",
    "PermissionDenied",
    "Priority",
    "QueueStats",
    "ReconnectBackoff",
    "ResourceExhausted",
    "RetryAfter",
    "SyncHandler",
    "Unauthenticated",
    "Unavailable",
    "Worker",
    "WorkerCounters",
    "WrongState",
]
