"""Script result codes and the one function that turns them into outcomes.

A script may return only the codes its header lists (`Codes:` in lua/*.lua); anything else is
an InternalError, never a success: the store fails closed.
"""

from __future__ import annotations

import enum

from jobqueue_server.errors import InternalError, JobNotFound, JobQueueError, LeaseLost, WrongState
from jobqueue_server.store.lua_header import LuaHeader


class Code(enum.IntEnum):
    OK = 1
    DEAD = 2
    NOT_FOUND = -1
    LEASE_LOST = -2
    WRONG_STATE = -3


SUCCESSES = frozenset({Code.OK, Code.DEAD})


def error_for(script: LuaHeader, code: int, job_id: str, state: str = "") -> JobQueueError | None:
    """None when `code` is a success of `script`, else the error it stands for."""
    if code not in script.codes:
        return InternalError(f"{script.file} answered code {code} for job {job_id}, which it does not list")
    if code in SUCCESSES:
        return None
    if code == Code.NOT_FOUND:
        return JobNotFound(f"job {job_id} not found")
    if code == Code.LEASE_LOST:
        return LeaseLost(f"the lease token for job {job_id} is not current")
    if code == Code.WRONG_STATE:
        return WrongState(f"job {job_id} is {state}")
    return InternalError(f"{script.file} lists code {code}, which the store cannot map")
