"""Producer batching (docs/clients.md, "Producer batching"): the rules both producer clients share.

Concurrent ``enqueue`` calls are gathered into EnqueueBatch calls. :class:`Gatherer` decides
when a batch goes out; :func:`deliver` answers its callers. Neither does I/O or waits: the
asyncio driver (aio_batcher.py) and the threading driver (sync_batcher.py) send, time and
wait, so both clients follow the same rules.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, Protocol, TypeVar

from jobqueue import convert
from jobqueue.errors import Internal, InvalidArgument, NotFound
from jobqueue.models import EnqueueResult
from jobqueue.v1 import job_queue_service_pb2 as svc

#: The server's default max_batch, and its upper limit.
DEFAULT_MAX_JOBS = 1000
MAX_JOBS_LIMIT = 10_000
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
#: The server refuses messages over 64 MiB.
MAX_BYTES_LIMIT = 64 * 1024 * 1024
#: As Kafka's producer since 4.0: longer than a loaded call's round trip, so that under load one
#: batch is in flight at a time and the next gathers until it is answered (fewer, bigger calls
#: cost the client and the server less per job: measured, docs/performance.md).
DEFAULT_LINGER_S = 0.005
#: EnqueueBatch calls in flight at once (docs/clients.md, as the Go and TypeScript clients):
#: the second only for a batch that has waited `linger` (a slow call must not hold up every
#: caller), or a full one; batches past it wait for a slot, gathering until full.
MAX_IN_FLIGHT = 2
#: On an EnqueueStream a message costs the server a fraction of a call, so a batch is full at
#: 32 jobs (or `max_jobs`, if fewer) and goes at once, up to the server's read-ahead of 64
#: unanswered: the server starts on it while the producer makes the next (64 concurrent
#: callers: 32 made 1.4-1.6x the jobs/s of waves of 64 or of one EnqueueBatch at a time).
STREAM_BATCH_JOBS = 32
STREAM_MAX_IN_FLIGHT = 64
_REQUESTS = "requests["


@dataclass(frozen=True, slots=True)
class Batching:
    """How ``enqueue`` calls are gathered into EnqueueBatch calls (on by default).

    A batch goes out when no batch is in flight (as soon as the one in flight is answered),
    when it holds `max_jobs` jobs or `max_bytes` bytes of encoded requests, or when its first
    job has waited `linger` (seconds or a timedelta) beside a batch in flight, whichever comes
    first. Keep `max_jobs` at
    most the server's ``max_batch`` (1,000 by default): a larger batch is refused whole.
    """

    max_jobs: int = DEFAULT_MAX_JOBS
    max_bytes: int = DEFAULT_MAX_BYTES
    linger: timedelta | float = DEFAULT_LINGER_S

    def __post_init__(self) -> None:
        if not 1 <= self.max_jobs <= MAX_JOBS_LIMIT:
            raise InvalidArgument(f"max_jobs must be 1 to {MAX_JOBS_LIMIT}", field="batching.max_jobs")
        if not 1 <= self.max_bytes <= MAX_BYTES_LIMIT:
            raise InvalidArgument(f"max_bytes must be 1 to {MAX_BYTES_LIMIT}", field="batching.max_bytes")
        if not 0 <= convert.seconds(self.linger) < math.inf:
            raise InvalidArgument("linger must be finite and not negative", field="batching.linger")

    @property
    def linger_s(self) -> float:
        return convert.seconds(self.linger)


DEFAULT_BATCHING = Batching()


class Waiter(Protocol):
    """Where a caller waits for its answer: an asyncio or a concurrent.futures Future."""

    def done(self) -> bool: ...
    def set_result(self, result: EnqueueResult, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


class Timer(Protocol):
    def cancel(self) -> object: ...


W = TypeVar("W", bound=Waiter)


@dataclass(eq=False, slots=True)
class Call(Generic[W]):
    """One ``enqueue`` call waiting for its job's answer."""

    request: svc.EnqueueRequest
    size: int
    deadline: float  # monotonic seconds
    waiter: W
    batch: Batch[W] | None = None


@dataclass(eq=False, slots=True)
class Batch(Generic[W]):
    """Jobs of one durability level, sent in one call."""

    durability: int
    calls: list[Call[W]] = field(default_factory=list)
    size: int = 0
    timer: Timer | None = None  # the driver's linger timer, if it keeps one
    lingered: bool = False  # its first job has waited `linger`: it may take a second slot
    sent: bool = False
    on_done: list[Callable[[], object]] = field(default_factory=list)  # flushes waiting for it


class Gatherer(Generic[W]):
    """Open, ready and in-flight batches; every method returns the batches to send now.

    Not thread-safe: the threading driver holds its lock around each call.
    """

    def __init__(self, settings: Batching, *, stream: bool = False) -> None:
        self._settings = settings
        self._max_bytes = settings.max_bytes
        self._max_jobs, self._max_in_flight = settings.max_jobs, MAX_IN_FLIGHT
        if stream:
            self.use_stream()
        self._open: dict[int, Batch[W]] = {}  # gathering: at most one per durability level
        self._ready: deque[Batch[W]] = deque()  # closed, waiting for a slot
        self._sending: set[Batch[W]] = set()

    def use_stream(self) -> None:
        """Batches go on an EnqueueStream: smaller ones, more of them unanswered at once."""
        self._max_jobs = min(self._settings.max_jobs, STREAM_BATCH_JOBS)
        self._max_in_flight = STREAM_MAX_IN_FLIGHT

    def use_calls(self) -> None:
        """Batches go as EnqueueBatch calls (a server without EnqueueStream)."""
        self._max_jobs, self._max_in_flight = self._settings.max_jobs, MAX_IN_FLIGHT

    def add(self, call: Call[W]) -> tuple[list[Batch[W]], Batch[W] | None]:
        """Puts `call` in the open batch of its level: returns the batches to send, and the
        batch it opened (whose linger starts now) if it opened one that is still open."""
        level = call.request.durability
        batch = self._open.get(level)
        to_send: list[Batch[W]] = []
        if batch is not None and batch.size + call.size > self._max_bytes:
            to_send += self._close(batch)
            batch = None
        opened = batch is None
        if batch is None:
            batch = self._open[level] = Batch(level)
        batch.calls.append(call)
        batch.size += call.size
        call.batch = batch
        if not self._sending or len(batch.calls) >= self._max_jobs or batch.size >= self._max_bytes:
            return to_send + self._close(batch), None
        return to_send, batch if opened else None

    def lingered(self, batch: Batch[W]) -> list[Batch[W]]:
        """`batch`'s first job has waited long enough: send it, unless no slot is free (then
        it keeps gathering until a batch in flight is answered or it is full)."""
        batch.lingered = True
        if self._open.get(batch.durability) is batch and len(self._sending) < self._max_in_flight:
            return self._close(batch)
        return []

    def answered(self, batch: Batch[W]) -> list[Batch[W]]:
        """`batch` is done (every caller answered): its slot goes to the next batches."""
        self._sending.discard(batch)
        for done in batch.on_done:
            done()
        to_send: list[Batch[W]] = []
        while self._ready and len(self._sending) < self._max_in_flight:
            to_send += self._start(self._ready.popleft())
        for waiting in list(self._open.values()):
            # Beside a batch still in flight, only one that has lingered goes (one batch at a
            # time under load, each as big as one round trip gathers).
            if len(self._sending) >= self._max_in_flight or (self._sending and not waiting.lingered):
                continue
            to_send += self._close(waiting)
        return to_send

    def withdraw(self, call: Call[W]) -> None:
        """Takes out the job of a caller that gave up, unless its batch was sent."""
        batch = call.batch
        if batch is None or batch.sent:
            return
        batch.calls.remove(call)
        batch.size -= call.size
        if batch.calls:
            return
        if self._open.get(batch.durability) is batch:
            del self._open[batch.durability]
            if batch.timer is not None:
                batch.timer.cancel()
        elif batch in self._ready:
            self._ready.remove(batch)

    def flush(self) -> tuple[list[Batch[W]], list[Batch[W]]]:
        """Closes every open batch: returns the batches to send, and every batch to wait for."""
        to_send: list[Batch[W]] = []
        for batch in list(self._open.values()):
            to_send += self._close(batch)
        return to_send, [*self._sending, *self._ready]

    def _close(self, batch: Batch[W]) -> list[Batch[W]]:
        del self._open[batch.durability]
        if batch.timer is not None:
            batch.timer.cancel()
        if len(self._sending) < self._max_in_flight:
            return self._start(batch)
        self._ready.append(batch)
        return []

    def _start(self, batch: Batch[W]) -> list[Batch[W]]:
        # A caller cancelled before the send is not sent (its waiter is already done).
        batch.calls = [call for call in batch.calls if not call.waiter.done()]
        batch.sent = True
        if not batch.calls:
            for done in batch.on_done:
                done()
            return []
        self._sending.add(batch)
        return [batch]


def timeout(batch: Batch[W], now: float) -> float | None:
    """The call's timeout: what is left of the earliest deadline among its callers."""
    earliest = min(call.deadline for call in batch.calls)
    return None if earliest == math.inf else max(0.0, earliest - now)


def batch_request(batch: Batch[W]) -> svc.EnqueueBatchRequest:
    # Each request carries the batch's level, so the batch itself leaves it unset.
    return svc.EnqueueBatchRequest(requests=[call.request for call in batch.calls])


Outcome = Sequence[svc.EnqueueResponse] | BaseException


def deliver(batch: Batch[W], outcome: Outcome) -> list[Call[W]]:
    """Answers `batch`'s callers; returns those to send again (another job was refused alone)."""
    calls = batch.calls
    if isinstance(outcome, BaseException):
        index = refused_job(outcome, len(calls))
        if index is None:
            for call in calls:
                _fail(call, outcome)
            return []
        assert isinstance(outcome, InvalidArgument | NotFound)
        _fail(calls[index], caller_error(outcome, index))
        # A caller who gave up after the first send is not sent again.
        return [call for i, call in enumerate(calls) if i != index and not call.waiter.done()]
    if len(outcome) != len(calls):
        error = Internal(f"the server answered {len(outcome)} of {len(calls)} jobs")
        for call in calls:
            _fail(call, error)
        return []
    for call, response in zip(calls, outcome, strict=True):
        if not call.waiter.done():
            call.waiter.set_result(EnqueueResult(job_id=response.job_id, duplicate=response.duplicate))
    return []


def refused_job(error: BaseException, jobs: int) -> int | None:
    """The index of the one job an EnqueueBatch was refused for (a field ``requests[i]...``: a
    bad field, or a ``depends_on`` naming no job)."""
    if (
        not isinstance(error, InvalidArgument | NotFound)
        or not error.field
        or not error.field.startswith(_REQUESTS)
    ):
        return None
    index, bracket, _ = error.field[len(_REQUESTS) :].partition("]")
    if not bracket or not index.isdigit() or int(index) >= jobs:
        return None
    return int(index)


def caller_error(error: InvalidArgument | NotFound, index: int) -> InvalidArgument | NotFound:
    """The batch's error as a single enqueue would have raised it: ``requests[3].queue`` -> ``queue``."""
    prefix = f"{_REQUESTS}{index}]"
    assert error.field is not None
    field = error.field[len(prefix) :].removeprefix(".") or None
    message = error.message.replace(f"{prefix}.", "", 1).replace(f"{prefix}: ", "", 1)
    return type(error)(message, field=field, reason=error.reason, code=error.code)


def _fail(call: Call[W], error: BaseException) -> None:
    if not call.waiter.done():
        # Each caller raises its own copy: one exception raised in many tasks or threads
        # would gather all their tracebacks.
        call.waiter.set_exception(copy.copy(error))
