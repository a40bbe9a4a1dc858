"""Request messages built from Python arguments, shared by the sync and async clients."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any

from jobqueue import convert
from jobqueue.errors import InvalidArgument
from jobqueue.models import EnqueueResult, JobSpec, JobState
from jobqueue.v1 import job_queue_service_pb2 as svc

# Shared by both producer clients.
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WAIT_S = 60.0

# The server's default batch limit; a larger batch is split into several calls.
MAX_BATCH = 1000
# Keeps each EnqueueBatch call well under the server's 64 MiB message limit.
MAX_BATCH_BYTES = 8 * 1024 * 1024
_SPEC_FIELDS = frozenset(f.name for f in fields(JobSpec))


def enqueue_request(spec: JobSpec) -> svc.EnqueueRequest:
    """The EnqueueRequest for one job; raises InvalidArgument for a malformed argument."""
    request = svc.EnqueueRequest(
        queue=spec.queue,
        priority=convert.to_priority(spec.priority),
        max_attempts=spec.max_attempts or 0,
        idempotency_key=spec.idempotency_key or "",
        metadata=dict(spec.metadata or {}),
        durability=convert.to_durability(spec.durability),
    )
    _set_payload(request, spec.payload)
    if spec.delay is not None and spec.run_at is not None:
        raise InvalidArgument("give at most one of delay and run_at", field="delay")
    if spec.delay is not None:
        request.delay.CopyFrom(convert.to_duration(spec.delay, "delay"))
    if spec.run_at is not None:
        request.schedule_time.CopyFrom(convert.to_timestamp(spec.run_at, "run_at"))
    if spec.lease_duration is not None:
        request.lease_duration.CopyFrom(convert.to_duration(spec.lease_duration, "lease_duration"))
    if spec.backoff is not None:
        request.backoff.CopyFrom(convert.to_backoff(spec.backoff))
    return request


def _set_payload(request: svc.EnqueueRequest, payload: Mapping[str, Any] | bytes | None) -> None:
    if isinstance(payload, bytes | bytearray | memoryview):
        request.payload_bytes = bytes(payload)
    elif isinstance(payload, Mapping):
        request.payload.CopyFrom(convert.to_struct(payload))
    elif payload is not None:
        raise InvalidArgument(
            f"payload must be a mapping, bytes or None, not {type(payload).__name__}", field="payload"
        )


def as_spec(job: JobSpec | Mapping[str, Any]) -> JobSpec:
    """A JobSpec from a JobSpec or a dict with the same keys."""
    if isinstance(job, JobSpec):
        return job
    unknown = set(job) - _SPEC_FIELDS
    if unknown:
        raise InvalidArgument(f"unknown job spec keys: {', '.join(sorted(unknown))}")
    return JobSpec(**job)


def batches(requests: Sequence[svc.EnqueueRequest]) -> Iterator[list[svc.EnqueueRequest]]:
    """Splits requests into EnqueueBatch calls of at most MAX_BATCH jobs and ~MAX_BATCH_BYTES."""
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


def batch_requests(jobs: Sequence[JobSpec | Mapping[str, Any]]) -> list[svc.EnqueueRequest]:
    """EnqueueRequests for many jobs; a client-side error names the job's index."""
    requests = []
    for index, job in enumerate(jobs):
        try:
            requests.append(enqueue_request(as_spec(job)))
        except InvalidArgument as error:
            field = f"requests[{index}].{error.field}" if error.field else f"requests[{index}]"
            raise InvalidArgument(f"requests[{index}]: {error.message}", field=field) from error
    return requests


def list_request(queue: str, state: JobState | str, page_size: int, page_token: str) -> svc.ListJobsRequest:
    try:
        proto_state = convert.STATE_NUMBERS[JobState(state)]
    except ValueError:
        raise InvalidArgument(f"state: must be one of {', '.join(JobState)}", field="state") from None
    return svc.ListJobsRequest(queue=queue, state=proto_state, page_size=page_size, page_token=page_token)
