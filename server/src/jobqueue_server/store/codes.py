"""Script result codes and the one function that turns them into domain errors."""

from __future__ import annotations

import enum

from jobqueue_server.errors import JobNotFound, JobQueueError, LeaseLost, WrongState


class Code(enum.IntEnum):
    OK = 1
    DEAD = 2
    NOT_FOUND = -1
    LEASE_LOST = -2
    WRONG_STATE = -3


def error_for(code: int, job_id: str, state: str = "") -> JobQueueError | None:
    """The domain error a negative script code stands for, or None for success."""
    if code == Code.NOT_FOUND:
        return JobNotFound(f"job {job_id} not found")
    if code == Code.LEASE_LOST:
        return LeaseLost(f"the lease token for job {job_id} is not current")
    if code == Code.WRONG_STATE:
        return WrongState(f"job {job_id} is {state}")
    return None
