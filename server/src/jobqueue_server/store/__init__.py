"""The only package that talks to Redis: keys, Lua scripts and the Store built on them."""

from jobqueue_server.store.partitions import Partitions
from jobqueue_server.store.records import (
    Backoff,
    DependencyFailure,
    Durability,
    EnqueueOutcome,
    ErrorEntry,
    ExtendOutcome,
    FailOutcome,
    JobRecord,
    JobState,
    Lease,
    LeasedJob,
    NewJob,
    Priority,
    Progress,
    QueueCounts,
    QueueLimits,
    Settle,
)
from jobqueue_server.store.redis_store import EnqueueResult, Store, StoreConfig

__all__ = [
    "Backoff",
    "DependencyFailure",
    "Durability",
    "EnqueueOutcome",
    "EnqueueResult",
    "ErrorEntry",
    "ExtendOutcome",
    "FailOutcome",
    "JobRecord",
    "JobState",
    "Lease",
    "LeasedJob",
    "NewJob",
    "Partitions",
    "Priority",
    "Progress",
    "QueueCounts",
    "QueueLimits",
    "Settle",
    "Store",
    "StoreConfig",
]
