"""The access policy: which roles may call each method, and which queues a request names.

Both tables are read from the request alone (a job id carries its queue: `<queue>:<ulid>`), so
the interceptor decides before any validation or Redis call.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.ids import queue_of


class Role(enum.StrEnum):
    PRODUCER = "producer"
    WORKER = "worker"
    ADMIN = "admin"


_PRODUCERS = frozenset({Role.PRODUCER, Role.ADMIN})
_WORKERS = frozenset({Role.WORKER, Role.ADMIN})
_ADMINS = frozenset({Role.ADMIN})

#: Every method of JobQueueService and the roles that may call it. A method missing here is
#: refused to every role (tests/auth checks the table covers the service).
METHOD_ROLES: dict[str, frozenset[Role]] = {
    "Enqueue": _PRODUCERS,
    "EnqueueBatch": _PRODUCERS,
    "EnqueueStream": _PRODUCERS,
    "GetStatus": _PRODUCERS,
    "WatchJob": _PRODUCERS,
    "Lease": _WORKERS,
    "Ack": _WORKERS,
    "Fail": _WORKERS,
    "Extend": _WORKERS,
    "Stats": _ADMINS,
    "ListJobs": _ADMINS,
    "Cancel": _ADMINS,
    "Retry": _ADMINS,
    "PauseQueue": _ADMINS,
    "CreateQueue": _ADMINS,
    "ResumeQueue": _ADMINS,
    "SetQueueLimits": _ADMINS,
    "CreateToken": _ADMINS,
    "ListTokens": _ADMINS,
    "RevokeToken": _ADMINS,
    "CreateSchedule": _ADMINS,
    "GetSchedule": _ADMINS,
    "ListSchedules": _ADMINS,
    "UpdateSchedule": _ADMINS,
    "DeleteSchedule": _ADMINS,
    "PauseSchedule": _ADMINS,
    "ResumeSchedule": _ADMINS,
    "CreateWebhook": _ADMINS,
    "ListWebhooks": _ADMINS,
    "DeleteWebhook": _ADMINS,
}
#: Methods that act on tokens, not queues: only an admin whose patterns include `*` may call
#: them, since a token it made could otherwise reach queues beyond its own.
TOKEN_METHODS = frozenset({"CreateToken", "ListTokens", "RevokeToken"})
#: Methods on schedules, which are named, not found by queue: only an admin whose patterns
#: include `*` may call them.
SCHEDULE_METHODS = frozenset(
    {
        "CreateSchedule",
        "GetSchedule",
        "ListSchedules",
        "UpdateSchedule",
        "DeleteSchedule",
        "PauseSchedule",
        "ResumeSchedule",
    }
)
#: Webhooks may hear of every queue's jobs: only an admin whose patterns include `*`.
WEBHOOK_METHODS = frozenset({"CreateWebhook", "ListWebhooks", "DeleteWebhook"})
_UNRESTRICTED_METHODS = TOKEN_METHODS | SCHEDULE_METHODS | WEBHOOK_METHODS

ALL_QUEUES = "*"
MAX_PATTERNS = 64
PATTERN_RE = re.compile(r"^[A-Za-z0-9._:*?\[\]!-]{1,128}$")


@dataclass(frozen=True)
class Principal:
    """Who a call comes from: the token that authenticated it."""

    token_id: str
    name: str
    role: Role
    patterns: tuple[str, ...]
    expires_ms: int | None
    _allowed: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def unrestricted(self) -> bool:
        return ALL_QUEUES in self.patterns

    def may_call(self, method: str) -> bool:
        if self.role not in METHOD_ROLES.get(method, frozenset()):
            return False
        return method not in _UNRESTRICTED_METHODS or self.unrestricted

    def may_touch(self, queue: str) -> bool:
        allowed = self._allowed.get(queue)
        if allowed is None:
            allowed = any(fnmatch.fnmatchcase(queue, pattern) for pattern in self.patterns)
            if len(self._allowed) < 4096:  # remembered per token, within bounds
                self._allowed[queue] = allowed
        return allowed


#: The principal of the call being served (None when the server runs without --auth).
current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


def queues_named(request: Any, limit: int) -> Iterator[tuple[str, str]]:
    """(field, queue) for every queue a request names. Repeated fields longer than `limit`
    are left to validation, which refuses them whole before anything is done."""
    if isinstance(request, _BY_JOB_ID):
        yield from _job_queue("job_id", request.job_id)
    elif isinstance(
        request,
        svc.EnqueueRequest
        | svc.ListJobsRequest
        | svc.StatsRequest
        | svc.PauseQueueRequest
        | svc.CreateQueueRequest
        | svc.ResumeQueueRequest
        | svc.SetQueueLimitsRequest,
    ):
        if request.queue:
            yield "queue", request.queue
    elif isinstance(request, svc.EnqueueBatchRequest | svc.EnqueueStreamRequest):
        if isinstance(request, svc.EnqueueBatchRequest) and request.queue:
            yield "queue", request.queue  # the queue of the requests that name none
        if len(request.requests) <= limit:
            yield from (
                (f"requests[{i}].queue", job.queue) for i, job in enumerate(request.requests) if job.queue
            )
    elif isinstance(request, svc.LeaseRequest):
        yield from _lease_queues(request, limit)


_BY_JOB_ID = (
    svc.GetStatusRequest,
    svc.WatchJobRequest,
    svc.CancelRequest,
    svc.RetryRequest,
    svc.AckRequest,
    svc.FailRequest,
    svc.ExtendRequest,
)


def _lease_queues(request: svc.LeaseRequest, limit: int) -> Iterator[tuple[str, str]]:
    if request.HasField("subscribe") and len(request.subscribe.queues) <= limit:
        yield from ((f"subscribe.queues[{i}]", q) for i, q in enumerate(request.subscribe.queues))
    for name in ("acks", "fails", "extends"):
        settles = getattr(request, name)
        if len(settles) <= limit:
            for index, settle in enumerate(settles):
                yield from _job_queue(f"{name}[{index}].job_id", settle.job_id)


def _job_queue(field_name: str, job_id: str) -> Iterator[tuple[str, str]]:
    queue, separator, _ = job_id.rpartition(":")
    if separator and queue:  # a malformed id is validation's to refuse
        yield field_name, queue_of(queue)  # a partition's job is its queue's


def pattern_problem(patterns: list[str]) -> str | None:
    """Why a token's queue patterns are refused, or None."""
    if not 1 <= len(patterns) <= MAX_PATTERNS:
        return f"must hold 1 to {MAX_PATTERNS} patterns (use * for every queue)"
    for pattern in patterns:
        if not PATTERN_RE.fullmatch(pattern):
            return f"{pattern!r} is not 1 to 128 of letters, digits, - _ . : and * ? [ ] !"
    return None
