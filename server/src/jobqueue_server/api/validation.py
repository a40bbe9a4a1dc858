"""Request validation: every check names the offending field and runs before any write."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import dependency_graph, job_wire
from jobqueue_server.api.convert import STATE_TO_PROTO
from jobqueue_server.errors import FieldViolation
from jobqueue_server.ids import MAX_PARTITIONS, QUEUE_NAME_RE, make_job_id, split_job_id
from jobqueue_server.store import (
    Backoff,
    DependencyFailure,
    Durability,
    NewJob,
    Partitions,
    Priority,
    Progress,
    QueueLimits,
    Settle,
)

MAX_DELAY_MS = 366 * 86_400_000
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 1000, 7 * 86_400_000
MAX_IDEMPOTENCY_KEY_CHARS = 256
MAX_METADATA_KEY_CHARS = 128
MAX_METADATA_VALUE_CHARS = 4096
MAX_TOKEN_CHARS = 128
MAX_WORKER_ID_CHARS = 256
MAX_SUBSCRIBED_QUEUES = 64
MAX_MULTIPLIER = 100.0
# Nesting of objects and lists in a payload or result (each JSON level is two messages).
MAX_JSON_DEPTH = 32
DEFAULT_BACKOFF = Backoff()
QUEUE_GRAMMAR = "1 to 128 of letters, digits, '-', '_', '.', ':'"


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured limits and defaults validation applies."""

    max_payload_bytes: int
    max_batch: int
    max_in_flight: int
    max_metadata_entries: int
    max_error_bytes: int
    max_lease_ms: int
    default_max_attempts: int
    default_durability: Durability = Durability.APPLIED
    subscribe_timeout_s: float = 30.0


def queue_name(value: str, field: str) -> str:
    if not value:
        raise FieldViolation(field, "is required")
    if not QUEUE_NAME_RE.fullmatch(value):
        raise FieldViolation(field, f"must be {QUEUE_GRAMMAR}")
    return value


def job_id(value: str, field: str = "job_id") -> str:
    if not value:
        raise FieldViolation(field, "is required")
    if split_job_id(value) is None:
        raise FieldViolation(field, "is not a job id (<queue>:<26-character id>, or <queue>~<n>:<id>)")
    return value


def duration_ms(value: duration_pb2.Duration, field: str, *, maximum: int) -> int:
    """A non-negative duration in whole ms, at most `maximum`."""
    if value.seconds < 0 or value.nanos < 0 or value.nanos >= 1_000_000_000:
        raise FieldViolation(field, "must be a non-negative duration")
    ms = value.seconds * 1000 + value.nanos // 1_000_000
    if ms > maximum:
        raise FieldViolation(field, f"must be at most {maximum // 1000} s")
    return ms


def timestamp_ms(value: timestamp_pb2.Timestamp, field: str) -> int:
    if value.nanos < 0 or value.nanos >= 1_000_000_000 or not 0 <= value.seconds <= 253_402_300_799:
        raise FieldViolation(field, "must be a valid time between 1970 and 9999")
    return value.seconds * 1000 + value.nanos // 1_000_000


def _backoff(request: svc.EnqueueRequest, prefix: str) -> Backoff:
    field = f"{prefix}backoff"
    policy = request.backoff
    initial = DEFAULT_BACKOFF.initial_ms
    if policy.HasField("initial_delay"):
        initial = duration_ms(policy.initial_delay, f"{field}.initial_delay", maximum=MAX_DELAY_MS)
    cap = DEFAULT_BACKOFF.max_ms
    if policy.HasField("max_delay"):
        cap = duration_ms(policy.max_delay, f"{field}.max_delay", maximum=MAX_DELAY_MS)
    multiplier = policy.multiplier or DEFAULT_BACKOFF.multiplier
    if not 1.0 <= multiplier <= MAX_MULTIPLIER:
        raise FieldViolation(f"{field}.multiplier", f"must be between 1 and {MAX_MULTIPLIER:g}")
    jitter = 0.0 if policy.no_jitter else (policy.jitter or DEFAULT_BACKOFF.jitter)
    if not 0.0 <= jitter <= 1.0:
        raise FieldViolation(f"{field}.jitter", "must be between 0 and 1")
    return Backoff(initial, max(cap, initial), multiplier, jitter)


def _metadata(request: svc.EnqueueRequest, field: str, limits: Limits) -> dict[str, str]:
    if len(request.metadata) > limits.max_metadata_entries:
        raise FieldViolation(field, f"must have at most {limits.max_metadata_entries} entries")
    for key, value in request.metadata.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise FieldViolation(
                f"{field}[{key!r}]", f"keys must be 1 to {MAX_METADATA_KEY_CHARS} characters"
            )
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise FieldViolation(
                f"{field}[{key!r}]", f"values must be at most {MAX_METADATA_VALUE_CHARS} characters"
            )
    return dict(request.metadata)


def _schedule(request: svc.EnqueueRequest, prefix: str) -> tuple[int, int | None]:
    """(delay ms, absolute due ms or None)."""
    has_delay, has_time = request.HasField("delay"), request.HasField("schedule_time")
    if not has_delay and not has_time:
        return 0, None
    if has_delay and has_time:
        raise FieldViolation(f"{prefix}delay", "set at most one of delay and schedule_time")
    if has_delay:
        return duration_ms(request.delay, f"{prefix}delay", maximum=MAX_DELAY_MS), None
    return 0, timestamp_ms(request.schedule_time, f"{prefix}schedule_time")


def struct_depth(value: struct_pb2.Struct | struct_pb2.ListValue) -> int:
    """How many objects and lists are nested in `value`, itself counted."""
    children = value.fields.values() if isinstance(value, struct_pb2.Struct) else value.values
    deepest = 0
    for child in children:
        kind = child.WhichOneof("kind")
        if kind == "struct_value":
            deepest = max(deepest, struct_depth(child.struct_value))
        elif kind == "list_value":
            deepest = max(deepest, struct_depth(child.list_value))
    return deepest + 1


def _shallow_enough(value: struct_pb2.Struct, field: str) -> None:
    # A job message adds its own levels to the payload's: past protobuf's limit of 100
    # nested messages a worker could not decode the job it was leased.
    if struct_depth(value) > MAX_JSON_DEPTH:
        raise FieldViolation(field, f"must not nest objects and lists more than {MAX_JSON_DEPTH} deep")


# A Value.number_value (tag 0x11, then 8 little-endian bytes) whose exponent bits are all set:
# NaN or an infinity. The bytes of a string may match too; only then are the values walked.
_NON_FINITE = re.compile(rb"\x11[\x00-\xff]{6}[\xf0-\xff][\x7f\xff]")


def _finite_numbers(value: struct_pb2.Struct, field: str) -> None:
    """Refuses NaN and infinities, which JSON cannot carry: a worker, `jobq status --json` or a
    dashboard would read the payload back as invalid JSON."""
    where = _non_finite_at(value, "")
    if where is not None:
        raise FieldViolation(field, f"{where.lstrip('.') or 'a value'} is NaN or infinite, not a JSON number")


def _non_finite_at(value: struct_pb2.Struct | struct_pb2.ListValue, path: str) -> str | None:
    """The JSON path of the first NaN or infinity in `value` (depth bounded by the caller)."""
    if isinstance(value, struct_pb2.Struct):
        children = [(f"{path}.{key}", child) for key, child in value.fields.items()]
    else:
        children = [(f"{path}[{index}]", child) for index, child in enumerate(value.values)]
    for where, child in children:
        kind = child.WhichOneof("kind")
        if kind == "number_value" and not math.isfinite(child.number_value):
            return where
        if kind == "struct_value" and (found := _non_finite_at(child.struct_value, where)) is not None:
            return found
        if kind == "list_value" and (found := _non_finite_at(child.list_value, where)) is not None:
            return found
    return None


# Request priority (0 is unset) -> the stored level.
_PRIORITIES = {0: Priority.NORMAL, **{int(p): p for p in Priority}}
# A Struct nested more than MAX_JSON_DEPTH deep serializes to at least 4 bytes a level, so a
# smaller payload needs no walk through its values.
_DEPTH_CHECK_BYTES = 4 * MAX_JSON_DEPTH
# Queue names already found well formed: most batches name one queue, over and over.
_GOOD_QUEUES: set[str] = set()
_GOOD_QUEUES_MAX = 4096


def _queue_of(request: svc.EnqueueRequest, prefix: str) -> str:
    queue = request.queue
    if queue not in _GOOD_QUEUES:
        queue_name(queue, f"{prefix}queue")
        if len(_GOOD_QUEUES) < _GOOD_QUEUES_MAX:
            _GOOD_QUEUES.add(queue)
    return queue


def stored_queue(
    request: svc.EnqueueRequest, partitions: Partitions | None, sticky: dict[str, str] | None = None
) -> str:
    """The queue, or the partition of it, where the job `request` makes is stored: jobs with
    the same partition key go together, and so do those that must meet in one partition to
    be ruled by their group's limits or found by their unique or idempotency key. The jobs
    without a key of one call go to one partition (`sticky`, by queue), so a batch stays one
    script call; the calls take the partitions in turn."""
    queue = request.queue
    if partitions is None or partitions.count(queue) == 1:
        return queue
    key = request.partition_key or request.group_key or request.unique_key or request.idempotency_key
    if key or sticky is None:
        return partitions.pick(queue, key)
    chosen = sticky.get(queue)
    if chosen is None:
        chosen = sticky[queue] = partitions.pick(queue, "")
    return chosen


def new_job(
    request: svc.EnqueueRequest,
    limits: Limits,
    ulid: str,
    prefix: str = "",
    batch_parents: tuple[str, ...] | None = None,
    partitions: Partitions | None = None,
    stored: str | None = None,
) -> NewJob:
    """A validated job with its stored wire bytes; `prefix` places the fields inside a batch
    (``requests[3].``), and `batch_parents` are the ids of the jobs of the batch it depends on
    (None outside a batch). It is stored in `stored`, else in the partition `partitions`
    picks. Run for every job enqueued: field names are built only on errors."""
    queue = _queue_of(request, prefix)
    if stored is None:
        stored = stored_queue(request, partitions)
    payload = request.payload.SerializeToString() if request.HasField("payload") else b""
    payload_bytes, idempotency_key, max_attempts = (
        request.payload_bytes,
        request.idempotency_key,
        request.max_attempts,
    )
    if len(payload) + len(payload_bytes) > limits.max_payload_bytes:
        raise FieldViolation(f"{prefix}payload", f"payload is larger than {limits.max_payload_bytes} bytes")
    if len(payload) >= _DEPTH_CHECK_BYTES:
        _shallow_enough(request.payload, f"{prefix}payload")
    if _NON_FINITE.search(payload):
        _finite_numbers(request.payload, f"{prefix}payload")
    priority = _PRIORITIES.get(request.priority)
    if priority is None:
        raise FieldViolation(f"{prefix}priority", "is not a known priority")
    if not 0 <= max_attempts <= 1000:
        raise FieldViolation(f"{prefix}max_attempts", "must be between 0 (server default) and 1000")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise FieldViolation(
            f"{prefix}idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    lease_ms = _job_lease_ms(request, limits, prefix) if request.HasField("lease_duration") else 0
    delay, due = _schedule(request, prefix)
    max_attempts = max_attempts or limits.default_max_attempts
    backoff = _backoff(request, prefix) if request.HasField("backoff") else DEFAULT_BACKOFF
    metadata = _metadata(request, f"{prefix}metadata", limits) if len(request.metadata) else {}
    timeout_ms = _timeout_ms(request, prefix) if request.HasField("timeout") else 0
    start_by = (
        timestamp_ms(request.start_deadline, f"{prefix}start_deadline")
        if request.HasField("start_deadline")
        else 0
    )
    unique_key, group_key = _key(request, "unique_key", prefix), _key(request, "group_key", prefix)
    if request.partition_key:
        _key(request, "partition_key", prefix)
    depends_on: tuple[str, ...] = ()
    on_failure = DependencyFailure.CANCEL
    if request.depends_on or request.ref or request.depends_on_refs or batch_parents:
        depends_on = dependency_graph.parents(request, prefix, batch_parents)
        on_failure = dependency_graph.policy(request, prefix)
    wire = job_wire.stored_part(
        make_job_id(stored, ulid),
        queue,
        payload=payload,
        payload_bytes=payload_bytes,
        priority=int(priority),
        max_attempts=max_attempts,
        metadata=metadata,
        lease_ms=lease_ms,
        backoff=backoff,
        idempotency_key=idempotency_key,
        timeout_ms=timeout_ms,
        start_deadline_ms=start_by,
        unique_key=unique_key,
        depends_on=depends_on,
        on_dependency_failure=request.on_dependency_failure if depends_on else 0,
        group_key=group_key,
    )
    return NewJob(
        stored,
        ulid,
        wire,
        priority,
        delay,
        due,
        max_attempts,
        backoff,
        lease_ms,
        idempotency_key,
        timeout_ms,
        start_by,
        unique_key,
        depends_on,
        on_failure,
        group_key,
    )


def _key(request: svc.EnqueueRequest, name: str, prefix: str) -> str:
    """A producer-chosen key (unique_key, group_key): at most MAX_IDEMPOTENCY_KEY_CHARS."""
    value: str = getattr(request, name)
    if len(value) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise FieldViolation(f"{prefix}{name}", f"must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters")
    return value


def _timeout_ms(request: svc.EnqueueRequest, prefix: str) -> int:
    timeout = duration_ms(request.timeout, f"{prefix}timeout", maximum=MAX_TIMEOUT_MS)
    if timeout < MIN_TIMEOUT_MS:
        raise FieldViolation(f"{prefix}timeout", "must be at least 1 s")
    return timeout


def _job_lease_ms(request: svc.EnqueueRequest, limits: Limits, prefix: str) -> int:
    lease_ms = duration_ms(request.lease_duration, f"{prefix}lease_duration", maximum=limits.max_lease_ms)
    if lease_ms == 0:
        raise FieldViolation(f"{prefix}lease_duration", "must be positive")
    return lease_ms


def new_jobs(
    requests: list[svc.EnqueueRequest], limits: Limits, ulids: list[str], partitions: Partitions | None = None
) -> list[NewJob]:
    if not requests:
        raise FieldViolation("requests", "must hold at least one request")
    if len(requests) > limits.max_batch:
        raise FieldViolation("requests", f"must hold at most {limits.max_batch} requests")
    sticky: dict[str, str] = {}
    stored = [stored_queue(r, partitions, sticky) for r in requests]
    graph = any(r.ref or r.depends_on_refs for r in requests)
    parents = dependency_graph.batch_parents(requests, ulids, stored) if graph else [()] * len(requests)
    return [
        new_job(r, limits, ulid, f"requests[{i}].", parents[i], stored=stored[i])
        for i, (r, ulid) in enumerate(zip(requests, ulids, strict=True))
    ]


def durability(value: int, field: str, limits: Limits) -> Durability:
    """The level a request asks for; unset means the server default."""
    if value == job_pb2.DURABILITY_UNSPECIFIED:
        return limits.default_durability
    if value not in job_pb2.Durability.values():
        raise FieldViolation(field, "is not a known durability level")
    return Durability(value)


MAX_LIMIT = 1_000_000


def queue_limits(message: job_pb2.QueueLimits, prefix: str = "limits.") -> QueueLimits:
    """A queue's limits, each from 0 (none) to MAX_LIMIT."""
    for kind in ("", "group_"):
        rate = getattr(message, f"{kind}rate_per_second")
        if not 0 <= rate <= MAX_LIMIT:  # NaN fails this too
            raise FieldViolation(
                f"{prefix}{kind}rate_per_second", f"must be from 0 (no limit) to {MAX_LIMIT:,}"
            )
        for name in (f"{kind}burst", f"{kind}max_active"):
            if not 0 <= getattr(message, name) <= MAX_LIMIT:
                raise FieldViolation(f"{prefix}{name}", f"must be from 0 to {MAX_LIMIT:,}")
        if getattr(message, f"{kind}burst") and not rate:
            raise FieldViolation(f"{prefix}{kind}burst", f"applies to a rate: set {kind}rate_per_second too")
    return QueueLimits(
        message.rate_per_second,
        message.burst,
        message.max_active,
        message.group_rate_per_second,
        message.group_burst,
        message.group_max_active,
    )


def limits_fit(limits: QueueLimits, partitions: int, prefix: str) -> None:
    """Each of a queue's partitions enforces a share of its burst and running jobs: neither can
    be below the partition count (a partition with a share of 0 would have no limit)."""
    for name in ("burst", "max_active"):
        value = getattr(limits, name)
        if 0 < value < partitions:
            raise FieldViolation(
                f"{prefix}{name}",
                f"is {value}, below the queue's {partitions} partitions: each partition enforces a share",
            )


def partitions(value: int, field: str) -> int:
    if not 0 <= value <= MAX_PARTITIONS:
        raise FieldViolation(field, f"must be from 1 to {MAX_PARTITIONS} (0: 1)")
    return value or 1


MAX_PROGRESS_TEXT_CHARS = 1024
MAX_LOG_LINES_PER_UPDATE = 100


def progress(update: svc.ProgressUpdate, prefix: str = "") -> Progress:
    """A handler's report, bounded; a line's newlines become spaces (the log is kept in lines)."""
    percent = None
    if update.HasField("percent"):
        percent = update.percent
        if not 0 <= percent <= 100:  # NaN fails this too
            raise FieldViolation(f"{prefix}percent", "must be from 0 to 100")
    if len(update.message) > MAX_PROGRESS_TEXT_CHARS:
        raise FieldViolation(f"{prefix}message", f"must be at most {MAX_PROGRESS_TEXT_CHARS} characters")
    if len(update.logs) > MAX_LOG_LINES_PER_UPDATE:
        raise FieldViolation(f"{prefix}logs", f"must hold at most {MAX_LOG_LINES_PER_UPDATE} lines")
    lines = []
    for index, line in enumerate(update.logs):
        if len(line) > MAX_PROGRESS_TEXT_CHARS:
            raise FieldViolation(
                f"{prefix}logs[{index}]", f"must be at most {MAX_PROGRESS_TEXT_CHARS} characters"
            )
        flat = " ".join(line.splitlines())
        if flat.strip():
            lines.append(flat)
    return Progress(update.job_id, update.lease_token, percent, update.message, tuple(lines))


def settles_per_message(request: svc.LeaseRequest, limits: Limits) -> None:
    """At most `max_in_flight` acks, fails and extends in one Lease message: no stream holds
    more jobs than that, and each item costs the server work before any answer goes out."""
    count = len(request.acks) + len(request.fails) + len(request.extends)
    if count > limits.max_in_flight:
        field = max(("acks", "fails", "extends"), key=lambda name: len(getattr(request, name)))
        raise FieldViolation(
            field, f"at most {limits.max_in_flight} acks, fails and extends in one message, got {count}"
        )


def batch_durability(
    request: svc.EnqueueBatchRequest | svc.EnqueueStreamRequest, limits: Limits
) -> Durability:
    """The strictest level set on the batch or on any of its requests, else the default.

    One WAITAOF confirms the whole batch, so the batch has one level; taking the strictest
    means no job is acknowledged at a weaker level than its request asked for.
    """
    levels = [durability(request.durability, "durability", limits)] if request.durability else []
    levels += [
        durability(r.durability, f"requests[{i}].durability", limits)
        for i, r in enumerate(request.requests)
        if r.durability
    ]
    if {Durability.FSYNCED, Durability.REPLICATED} <= set(levels):
        # Two confirmations of different things (the disk, the replicas): one batch has one.
        raise FieldViolation("durability", "a batch cannot mix DURABILITY_FSYNCED and DURABILITY_REPLICATED")
    return max(levels, default=limits.default_durability)


def _token(value: str, field: str) -> str:
    if not value:
        raise FieldViolation(field, "is required")
    if len(value) > MAX_TOKEN_CHARS:
        raise FieldViolation(field, "is not a lease token")
    return value


def ack(request: svc.AckRequest, limits: Limits, prefix: str = "") -> Settle:
    job, token = request.job_id, request.lease_token
    if (
        not request.HasField("result")
        and not request.durability
        and 0 < len(token) <= MAX_TOKEN_CHARS
        and split_job_id(job) is not None
    ):
        # The common ack: no result, the default level, well formed. Its field names are
        # built only when something is wrong.
        return Settle(
            job, token, durability=limits.default_durability, handler_ms=_handler_ms(request, prefix)
        )
    result = request.result.SerializeToString() if request.HasField("result") else b""
    if len(result) > limits.max_payload_bytes:
        raise FieldViolation(f"{prefix}result", f"result is larger than {limits.max_payload_bytes} bytes")
    if result:
        _shallow_enough(request.result, f"{prefix}result")
    return Settle(
        job_id(job, f"{prefix}job_id"),
        _token(token, f"{prefix}lease_token"),
        result=result,
        durability=durability(request.durability, f"{prefix}durability", limits),
        handler_ms=_handler_ms(request, prefix),
    )


def _handler_ms(request: svc.AckRequest | svc.FailRequest, prefix: str) -> int | None:
    if not request.HasField("handler_duration"):
        return None
    return duration_ms(request.handler_duration, f"{prefix}handler_duration", maximum=MAX_TIMEOUT_MS)


def fail(request: svc.FailRequest, limits: Limits, prefix: str = "") -> Settle:
    delay = -1
    if request.HasField("retry_delay"):
        delay = duration_ms(request.retry_delay, f"{prefix}retry_delay", maximum=MAX_DELAY_MS)
    # Long tracebacks are cut rather than refused: losing a failure report is worse.
    error = request.error.encode()[: limits.max_error_bytes].decode(errors="ignore")
    return Settle(
        job_id(request.job_id, f"{prefix}job_id"),
        _token(request.lease_token, f"{prefix}lease_token"),
        error=error,
        non_retryable=request.non_retryable,
        retry_delay_ms=delay,
        handler_ms=_handler_ms(request, prefix),
    )


def extend(request: svc.ExtendRequest, limits: Limits, prefix: str = "") -> Settle:
    lease_ms = 0
    if request.HasField("lease_duration"):
        lease_ms = duration_ms(request.lease_duration, f"{prefix}lease_duration", maximum=limits.max_lease_ms)
    return Settle(
        job_id(request.job_id, f"{prefix}job_id"),
        _token(request.lease_token, f"{prefix}lease_token"),
        lease_ms=lease_ms,
    )


@dataclass(frozen=True, slots=True)
class Subscription:
    queues: tuple[str, ...]
    max_in_flight: int
    worker_id: str
    lease_ms: int


def subscription(request: svc.Subscribe, limits: Limits) -> Subscription:
    if not request.queues:
        raise FieldViolation("subscribe.queues", "must name at least one queue")
    if len(request.queues) > MAX_SUBSCRIBED_QUEUES:
        raise FieldViolation("subscribe.queues", f"must name at most {MAX_SUBSCRIBED_QUEUES} queues")
    queues = tuple(
        dict.fromkeys(queue_name(q, f"subscribe.queues[{i}]") for i, q in enumerate(request.queues))
    )
    lease_ms = 0
    if request.HasField("lease_duration"):
        lease_ms = duration_ms(
            request.lease_duration, "subscribe.lease_duration", maximum=limits.max_lease_ms
        )
    if len(request.worker_id) > MAX_WORKER_ID_CHARS:
        raise FieldViolation("subscribe.worker_id", f"must be at most {MAX_WORKER_ID_CHARS} characters")
    return Subscription(queues, in_flight(request.max_in_flight, limits), request.worker_id, lease_ms)


def same_subscription(request: svc.Subscribe, current: Subscription, limits: Limits) -> None:
    """Refuses a later Subscribe that changes what the stream was opened with; fields left
    unset, or repeated with the same value, are accepted."""
    if request.queues:
        queues = tuple(dict.fromkeys(request.queues))
        if queues != current.queues:
            _changed("subscribe.queues", ", ".join(current.queues), ", ".join(queues))
    if request.worker_id and request.worker_id != current.worker_id:
        _changed("subscribe.worker_id", repr(current.worker_id), repr(request.worker_id))
    if request.HasField("lease_duration"):
        lease_ms = duration_ms(
            request.lease_duration, "subscribe.lease_duration", maximum=limits.max_lease_ms
        )
        if lease_ms != current.lease_ms:
            _changed("subscribe.lease_duration", _seconds(current.lease_ms), _seconds(lease_ms))


def _changed(field: str, was: str, now: str) -> None:
    raise FieldViolation(field, f"cannot change on an open stream: subscribed with {was}, got {now}")


def _seconds(ms: int) -> str:
    return f"{ms / 1000:g} s" if ms else "the server default"


def in_flight(value: int, limits: Limits, *, allow_zero: bool = False) -> int:
    """The window: 0 means 1 when a stream opens, and pauses delivery on an open stream."""
    if not 0 <= value <= limits.max_in_flight:
        raise FieldViolation("subscribe.max_in_flight", f"must be between 0 and {limits.max_in_flight}")
    return value if allow_zero else value or 1


STATE_FROM_PROTO = {proto: state for state, proto in STATE_TO_PROTO.items()}
