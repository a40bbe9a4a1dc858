"""Records to messages: states, times, durations, backoff policies, queue counts. A whole Job is
built from its stored wire bytes (job_wire.py)."""

from __future__ import annotations

import functools

from google.protobuf import duration_pb2, timestamp_pb2

from jobqueue.v1 import job_pb2
from jobqueue_server.store import Backoff, JobState, QueueCounts

STATE_TO_PROTO = {
    JobState.SCHEDULED: job_pb2.JOB_STATE_SCHEDULED,
    JobState.QUEUED: job_pb2.JOB_STATE_QUEUED,
    JobState.ACTIVE: job_pb2.JOB_STATE_ACTIVE,
    JobState.COMPLETED: job_pb2.JOB_STATE_COMPLETED,
    JobState.DEAD: job_pb2.JOB_STATE_DEAD,
    JobState.CANCELLED: job_pb2.JOB_STATE_CANCELLED,
    JobState.WAITING: job_pb2.JOB_STATE_WAITING,
}


def timestamp(ms: int) -> timestamp_pb2.Timestamp | None:
    if not ms:
        return None
    return timestamp_pb2.Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def duration(ms: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


@functools.lru_cache(maxsize=1024)
def backoff(policy: Backoff) -> job_pb2.BackoffPolicy:
    """Cached: most jobs share a few policies. Callers copy it (message fields copy on assignment)."""
    return job_pb2.BackoffPolicy(
        initial_delay=duration(policy.initial_ms),
        max_delay=duration(policy.max_ms),
        multiplier=policy.multiplier,
        jitter=policy.jitter,
        no_jitter=policy.jitter == 0,
    )


def queue_stats(counts: QueueCounts) -> job_pb2.QueueStats:
    return job_pb2.QueueStats(
        queue=counts.queue,
        queued=counts.queued,
        scheduled=counts.scheduled,
        active=counts.active,
        completed=counts.completed,
        dead=counts.dead,
        cancelled=counts.cancelled,
        oldest_queued_age=duration(max(0, counts.oldest_queued_age_ms)),
        paused=counts.paused,
        waiting=counts.waiting,
        partitions=counts.partitions,
        limits=None
        if counts.limits is None
        else job_pb2.QueueLimits(
            rate_per_second=counts.limits.rate_per_second,
            burst=counts.limits.burst,
            max_active=counts.limits.max_active,
            group_rate_per_second=counts.limits.group_rate_per_second,
            group_burst=counts.limits.group_burst,
            group_max_active=counts.limits.group_max_active,
        ),
    )
