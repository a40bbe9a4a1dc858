"""Request messages built from Python arguments, shared by the sync and async clients."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from jobqueue import convert
from jobqueue.errors import InvalidArgument
from jobqueue.models import JOB_SPEC_KEYS, EnqueueOptions, EnqueueResult, JobState, ListFilters
from jobqueue.v1 import job_queue_service_pb2 as svc

# Shared by both producer clients.
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 60.0

# The server's default batch limit; a larger batch is split into several calls.
MAX_BATCH = 1000
# Keeps each EnqueueBatch call well under the server's 64 MiB message limit.
MAX_BATCH_BYTES = 8 * 1024 * 1024

#: Every keyword `enqueue` takes besides the queue and the payload.
OPTION_KEYS = EnqueueOptions.__optional_keys__
_QUEUE_AND_PAYLOAD = frozenset({"queue", "payload"})
#: What a job of ``enqueue_many`` takes besides its queue and payload (the options and refs).
_BATCH_OPTION_KEYS = JOB_SPEC_KEYS - _QUEUE_AND_PAYLOAD


def enqueue_request(job: Mapping[str, Any]) -> svc.EnqueueRequest:
    """The EnqueueRequest for a JobSpec (or any mapping with its keys); raises InvalidArgument
    naming the field for a malformed value or an unknown key (a misspelt option must not
    be dropped silently)."""
    _check_keys(job, JOB_SPEC_KEYS)
    options = {key: value for key, value in job.items() if key not in _QUEUE_AND_PAYLOAD}
    return build_request(
        job.get("queue"), job.get("payload"), cast(EnqueueOptions, options), _BATCH_OPTION_KEYS
    )


def build_request(
    queue: object, payload: object, options: EnqueueOptions, allowed: frozenset[str] = OPTION_KEYS
) -> svc.EnqueueRequest:
    """The EnqueueRequest for one job (``enqueue``'s arguments), checked as enqueue_request does."""
    if not isinstance(queue, str):
        raise InvalidArgument("queue: a string is required", field="queue")
    # Only what is set is written (unset fields take the server's defaults): this runs once
    # per enqueue, so it stays lean.
    request = svc.EnqueueRequest(queue=queue)
    _set_payload(request, payload)
    if options:
        _check_keys(options, allowed)
        _set_options(request, options)
    return request


def _check_keys(given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    if not allowed.issuperset(given):
        unknown = sorted(set(given) - allowed)[0]
        raise InvalidArgument(f"unknown job option {unknown!r}", field=unknown)


def _set_options(request: svc.EnqueueRequest, spec: EnqueueOptions) -> None:
    if (priority := spec.get("priority")) is not None:
        request.priority = convert.to_priority(priority)
    if max_attempts := spec.get("max_attempts"):
        request.max_attempts = max_attempts
    if idempotency_key := spec.get("idempotency_key"):
        request.idempotency_key = idempotency_key
    if metadata := spec.get("metadata"):
        request.metadata.update(metadata)
    if (durability := spec.get("durability")) is not None:
        request.durability = convert.to_durability(durability)
    _set_schedule(request, spec.get("delay"), spec.get("run_at"))
    if (lease := spec.get("lease_duration")) is not None:
        request.lease_duration.CopyFrom(convert.to_duration(lease, "lease_duration"))
    if (backoff := spec.get("backoff")) is not None:
        request.backoff.CopyFrom(convert.to_backoff(backoff))
    _set_running_limits(request, spec)


def _set_running_limits(request: svc.EnqueueRequest, spec: EnqueueOptions) -> None:
    """The options that bound a job's run: its timeout, start deadline and unique key."""
    if (limit := spec.get("execution_timeout")) is not None:
        request.timeout.CopyFrom(convert.to_duration(limit, "execution_timeout"))
    if (start_by := spec.get("start_deadline")) is not None:
        request.start_deadline.CopyFrom(convert.to_timestamp(start_by, "start_deadline"))
    if unique_key := spec.get("unique_key"):
        request.unique_key = unique_key
    if group_key := spec.get("group_key"):
        request.group_key = group_key
    if partition_key := spec.get("partition_key"):
        request.partition_key = partition_key
    _set_dependencies(request, spec)


def _set_dependencies(request: svc.EnqueueRequest, spec: EnqueueOptions) -> None:
    """depends_on and its failure policy; in a batch also the job's ref and those it names."""
    if depends_on := spec.get("depends_on"):
        if isinstance(depends_on, str):  # a lone id would be read as a sequence of letters
            raise InvalidArgument("depends_on must be a list of job ids, not a string", field="depends_on")
        request.depends_on.extend(depends_on)
    if (policy := spec.get("on_dependency_failure")) is not None:
        request.on_dependency_failure = convert.to_dependency_failure(policy)
    graph = cast("Mapping[str, Any]", spec)
    if ref := graph.get("ref"):
        request.ref = ref
    if refs := graph.get("depends_on_refs"):
        if isinstance(refs, str):
            raise InvalidArgument(
                "depends_on_refs must be a list of refs, not a string", field="depends_on_refs"
            )
        request.depends_on_refs.extend(refs)


def _set_payload(request: svc.EnqueueRequest, payload: object) -> None:
    # `type(...) is dict` first: an isinstance check against the Mapping ABC costs more.
    if type(payload) is dict or isinstance(payload, Mapping):
        request.payload.SetInParent()  # an empty object is still a JSON payload
        convert.fill_struct(request.payload, payload, "payload")
    elif isinstance(payload, bytes | bytearray | memoryview):
        request.payload_bytes = bytes(payload)
    elif payload is not None:
        raise InvalidArgument(
            f"payload must be a mapping, bytes or None, not {type(payload).__name__}", field="payload"
        )


def _set_schedule(
    request: svc.EnqueueRequest, delay: timedelta | float | None, run_at: datetime | None
) -> None:
    if delay is not None and run_at is not None:
        raise InvalidArgument("give at most one of delay and run_at", field="delay")
    if delay is not None:
        request.delay.CopyFrom(convert.to_duration(delay, "delay"))
    if run_at is not None:
        request.schedule_time.CopyFrom(convert.to_timestamp(run_at, "run_at"))


def batches(requests: Sequence[svc.EnqueueRequest]) -> Iterator[list[svc.EnqueueRequest]]:
    """Splits requests into EnqueueBatch calls of at most MAX_BATCH jobs and ~MAX_BATCH_BYTES;
    a graph (jobs with refs) must fit in one call, and is refused before anything is sent."""
    if len(requests) > MAX_BATCH and any(r.ref or r.depends_on_refs for r in requests):
        raise InvalidArgument(
            f"a batch whose jobs refer to each other (ref, depends_on_refs) must fit in one call: "
            f"at most {MAX_BATCH:,} jobs, not {len(requests):,}",
            field="requests",
        )
    batch: list[svc.EnqueueRequest] = []
    size = 0
    for request in requests:
        request_size = request.ByteSize()
        if batch and (len(batch) >= MAX_BATCH or size + request_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(request)
        size += request_size
    if batch:
        yield batch


def enqueue_result(response: svc.EnqueueResponse) -> EnqueueResult:
    return EnqueueResult(job_id=response.job_id, duplicate=response.duplicate)


def shift_field(error: InvalidArgument, offset: int) -> InvalidArgument:
    """Renumbers ``requests[i]`` in a batch error by the batch's offset in the whole list."""
    if not offset or not error.field or not error.field.startswith("requests["):
        return error
    index, _, rest = error.field[len("requests[") :].partition("]")
    if not index.isdigit():
        return error
    field = f"requests[{int(index) + offset}]{rest}"
    return InvalidArgument(
        error.message.replace(error.field, field, 1), field=field, reason=error.reason, code=error.code
    )


def common_queue(requests: Sequence[svc.EnqueueRequest]) -> str | None:
    """The queue every request names, or None when they name several (a trace span's name)."""
    queues = {request.queue for request in requests}
    return queues.pop() if len(queues) == 1 else None


def batch_requests(jobs: Sequence[Mapping[str, Any]]) -> list[svc.EnqueueRequest]:
    """EnqueueRequests for many jobs; a client-side error names the job's index."""
    requests = []
    for index, job in enumerate(jobs):
        try:
            requests.append(enqueue_request(job))
        except InvalidArgument as error:
            field = f"requests[{index}].{error.field}" if error.field else f"requests[{index}]"
            raise InvalidArgument(f"requests[{index}]: {error.message}", field=field) from error
    return requests


def list_request(
    queue: str, state: JobState | str, page_size: int, page_token: str, filters: ListFilters
) -> svc.ListJobsRequest:
    try:
        proto_state = convert.STATE_NUMBERS[JobState(state)]
    except ValueError:
        raise InvalidArgument(f"state: must be one of {', '.join(JobState)}", field="state") from None
    request = svc.ListJobsRequest(queue=queue, state=proto_state, page_size=page_size, page_token=page_token)
    if (after := filters.get("created_after")) is not None:
        request.created_after.CopyFrom(convert.to_timestamp(after, "created_after"))
    if (before := filters.get("created_before")) is not None:
        request.created_before.CopyFrom(convert.to_timestamp(before, "created_before"))
    if metadata := filters.get("metadata"):
        request.metadata.update(metadata)
    return request
