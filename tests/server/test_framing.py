"""No message the server builds is larger than a default gRPC client accepts (4 MiB)."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import framing, validation
from jobqueue_server.config import ServerSettings
from jobqueue_server.runtime.app import SettingsError, limits, store_config

# A character UTF-8 spends four bytes on.
WIDE = "\U0001f600"


def _largest_job(chosen: validation.Limits, max_errors_kept: int) -> svc.LeasedJob:
    """A job with every field at its limit: what validation lets through, and no more."""
    payload = struct_pb2.Struct()
    payload.update({"blob": "p" * (chosen.max_payload_bytes - 64)})
    assert len(payload.SerializeToString()) <= chosen.max_payload_bytes
    result = struct_pb2.Struct()
    result.update({"blob": "r" * (chosen.max_payload_bytes - 64)})
    error = "e" * chosen.max_error_bytes
    job = job_pb2.Job(
        id="q" * 128 + ":01ARZ3NDEKTSV4RRFFQ69G5FAV",
        queue="q" * 128,
        state=job_pb2.JOB_STATE_ACTIVE,
        payload=payload,
        result=result,
        attempts=1000,
        max_attempts=1000,
        last_error=error,
        errors=[job_pb2.JobError(attempt=1000, message=error) for _ in range(max_errors_kept)],
        metadata={
            f"{index:03d}" + WIDE * (validation.MAX_METADATA_KEY_CHARS - 3): WIDE
            * validation.MAX_METADATA_VALUE_CHARS
            for index in range(chosen.max_metadata_entries)
        },
        idempotency_key=WIDE * validation.MAX_IDEMPOTENCY_KEY_CHARS,
        worker_id=WIDE * validation.MAX_WORKER_ID_CHARS,
    )
    for stamp in (job.create_time, job.schedule_time, job.start_time, job.finish_time):
        stamp.FromMilliseconds(253_402_300_799_000)
    return svc.LeasedJob(job=job, lease_token="t" * validation.MAX_TOKEN_CHARS)


def test_the_largest_job_the_default_limits_allow_fits_one_message_and_the_bound_holds() -> None:
    chosen = limits(ServerSettings())
    kept = store_config(ServerSettings()).max_errors_kept
    job = _largest_job(chosen, kept)

    assert job.ByteSize() <= framing.largest_job_bytes(chosen, kept) < framing.MAX_MESSAGE_BYTES
    (response,) = framing.lease_responses(jobs=[job.SerializeToString()])
    assert len(response) <= framing.MAX_MESSAGE_BYTES
    assert svc.LeaseResponse.FromString(response).jobs[0] == job


@pytest.mark.parametrize(
    "settings",
    [
        ServerSettings(max_payload_bytes=2 * 1024 * 1024),
        ServerSettings(max_metadata_entries=200),
        ServerSettings(max_error_bytes=40_000),
    ],
)
def test_limits_that_would_let_a_job_outgrow_a_message_are_refused_at_start(settings: ServerSettings) -> None:
    with pytest.raises(SettingsError, match="more than the 4,194,304 a gRPC client accepts"):
        limits(settings)


def test_responses_are_split_where_the_next_job_would_pass_the_limit() -> None:
    jobs = [svc.LeasedJob(job=job_pb2.Job(id=str(i), payload_bytes=b"x" * 1_500_000)) for i in range(5)]

    responses = framing.lease_responses(jobs=[job.SerializeToString() for job in jobs])

    decoded = [svc.LeaseResponse.FromString(r) for r in responses]
    assert [len(r.jobs) for r in decoded] == [2, 2, 1]
    assert all(len(r) <= framing.MAX_MESSAGE_BYTES for r in responses)
    assert [j.job.id for r in decoded for j in r.jobs] == [str(i) for i in range(5)]


def test_the_size_counted_is_the_exact_encoded_size() -> None:
    items = [svc.Confirmation(job_id="j" * n) for n in (1, 127, 128, 20_000)]
    for item in items:
        assert framing.field_bytes(item) == svc.LeaseResponse(confirmations=[item]).ByteSize()


def test_many_confirmations_are_split_too() -> None:
    confirmation = svc.Confirmation(job_id="q:" + "x" * 150).SerializeToString()

    responses = framing.lease_responses(confirmations=[confirmation] * 40_000)

    assert len(responses) == 2
    assert all(len(r) <= framing.MAX_MESSAGE_BYTES for r in responses)
    assert sum(len(svc.LeaseResponse.FromString(r).confirmations) for r in responses) == 40_000
