"""The hand-written wire format against the generated code: what the server splices together
must decode to exactly the messages the protobuf library would build."""

from __future__ import annotations

import json

import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import convert, job_wire, wire
from jobqueue_server.store import Backoff, ErrorEntry, JobRecord, JobState, Priority

BACKOFF = Backoff(250, 9_000, 3.0, 0.1)


@pytest.mark.parametrize("value", [1, 127, 128, 16_383, 16_384, 2**31, 2**53])
def test_varints_match_protobufs(value: int) -> None:
    # QueueStats.queued is an int64, field 2: tag 0x10, then the varint.
    assert b"\x10" + wire.varint(value) == job_pb2.QueueStats(queued=value).SerializeToString()
    assert wire.varint_field(2, value) == job_pb2.QueueStats(queued=value).SerializeToString()
    assert wire.varint_field(2, 0) == b"" and wire.varint(0) == b"\x00"


@pytest.mark.parametrize("ms", [1, 999, 1_000, 1_001, 1_733_330_000_123, 253_402_300_799_999])
def test_timestamps_match_protobufs(ms: int) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromMilliseconds(ms)
    assert job_pb2.Job.FromString(wire.timestamp_field(wire.JOB_CREATE_TIME, ms)).create_time == expected
    assert wire.timestamp_field(wire.JOB_CREATE_TIME, 0) == b""


def _payload() -> struct_pb2.Struct:
    payload = struct_pb2.Struct()
    payload.update({"to": "ada@example.com", "n": 3, "nested": {"list": [1, "two", None]}})
    return payload


def _stored(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "payload": _payload().SerializeToString(),
        "payload_bytes": b"\x00\xffraw",
        "priority": 3,
        "max_attempts": 5,
        "metadata": {"tenant": "t-1", "empty": ""},
        "lease_ms": 45_500,
        "backoff": BACKOFF,
        "idempotency_key": "order-9",
    } | overrides
    return job_wire.stored_part("emails:01M90XZRARJ027XY32D98TYPN8", "emails", **fields)  # type: ignore[arg-type]


def test_the_stored_part_decodes_to_the_fields_given_at_enqueue() -> None:
    job = job_pb2.Job.FromString(_stored())

    expected = job_pb2.Job(
        id="emails:01M90XZRARJ027XY32D98TYPN8",
        queue="emails",
        payload=_payload(),
        payload_bytes=b"\x00\xffraw",
        priority=job_pb2.PRIORITY_HIGH,
        max_attempts=5,
        metadata={"tenant": "t-1", "empty": ""},
        lease_duration=duration_pb2.Duration(seconds=45, nanos=500_000_000),
        backoff=convert.backoff(BACKOFF),
        idempotency_key="order-9",
    )
    assert job == expected


def test_a_stored_record_reads_back_as_the_job_the_library_would_build() -> None:
    record = JobRecord(
        id="emails:01M90XZRARJ027XY32D98TYPN8",
        queue="emails",
        state=JobState.DEAD,
        priority=Priority.HIGH,
        wire=_stored(),
        attempts=5,
        max_attempts=5,
        create_ms=1_700_000_000_001,
        due_ms=1_700_000_000_002,
        start_ms=1_700_000_000_003,
        finish_ms=1_700_000_000_004,
        result=struct_pb2.Struct(fields={"ok": struct_pb2.Value(bool_value=True)}).SerializeToString(),
        last_error="boom",
        errors=[ErrorEntry(4, "slow", 1_700_000_000_000), ErrorEntry(5, "boom", 1_700_000_000_004)],
        worker_id="w-1",
    )

    job = job_wire.job_message(record)

    assert (job.state, job.attempts, job.last_error, job.worker_id) == (
        job_pb2.JOB_STATE_DEAD,
        5,
        "boom",
        "w-1",
    )
    assert [
        t.ToMilliseconds() for t in (job.create_time, job.schedule_time, job.start_time, job.finish_time)
    ] == [
        1_700_000_000_001,
        1_700_000_000_002,
        1_700_000_000_003,
        1_700_000_000_004,
    ]
    assert [(e.attempt, e.message, e.time.ToMilliseconds()) for e in job.errors] == [
        (4, "slow", 1_700_000_000_000),
        (5, "boom", 1_700_000_000_004),
    ]
    assert job.result["ok"] is True and job.payload == _payload()


def test_a_leased_job_is_the_stored_part_with_the_lease_and_the_changing_fields() -> None:
    errors = json.dumps([{"attempt": 1, "message": "timeout", "time_ms": 1_700_000_000_500}]).encode()
    shared = job_wire.lease_constants(1_700_000_001_000, "worker-7")

    encoded = job_wire.leased_job(
        _stored(),
        shared,
        token="0123456789abcdef.3",
        lease_expire_ms=1_700_000_031_000,
        attempts=2,
        create_ms=1_700_000_000_001,
        due_ms=1_700_000_000_900,
        last_error=b"timeout",
        errors=errors,
    )

    leased = svc.LeasedJob.FromString(encoded)
    assert (leased.lease_token, leased.lease_expire_time.ToMilliseconds()) == (
        "0123456789abcdef.3",
        1_700_000_031_000,
    )
    job = leased.job
    assert (job.state, job.attempts, job.worker_id, job.last_error) == (
        job_pb2.JOB_STATE_ACTIVE,
        2,
        "worker-7",
        "timeout",
    )
    assert (job.start_time.ToMilliseconds(), job.schedule_time.ToMilliseconds()) == (
        1_700_000_001_000,
        1_700_000_000_900,
    )
    assert [(e.attempt, e.message) for e in job.errors] == [(1, "timeout")]
    assert job.id == "emails:01M90XZRARJ027XY32D98TYPN8" and job.payload == _payload()


def test_a_job_stored_before_wire_bytes_reads_the_same_as_one_stored_after() -> None:
    legacy = {
        b"payload": _payload().SerializeToString(),
        b"payload_bytes": b"\x00\xffraw",
        b"metadata": json.dumps({"tenant": "t-1", "empty": ""}).encode(),
        b"idem_key": b"order-9",
    }
    common = {
        "id": "emails:01M90XZRARJ027XY32D98TYPN8", "queue": "emails", "state": JobState.QUEUED,
        "priority": Priority.HIGH, "max_attempts": 5, "lease_ms": 45_500, "backoff": BACKOFF,
    }  # fmt: skip

    old = job_wire.job_message(JobRecord(**common, legacy=legacy))  # type: ignore[arg-type]
    new = job_wire.job_message(JobRecord(**common, wire=_stored()))  # type: ignore[arg-type]

    assert old == new


@pytest.mark.parametrize("kind", [svc.CONFIRMATION_KIND_ACK, svc.CONFIRMATION_KIND_FAIL])
def test_an_ok_confirmation_written_out_is_the_librarys(kind: svc.ConfirmationKind.ValueType) -> None:
    from jobqueue_server.api.lease_session import _settled
    from jobqueue_server.api.status import OK

    decoded = svc.Confirmation.FromString(_settled("q:01M90XZRARJ027XY32D98TYPN8", kind))

    assert decoded == svc.Confirmation(job_id="q:01M90XZRARJ027XY32D98TYPN8", status=OK, kind=kind)
    assert decoded.HasField("status")


@pytest.mark.parametrize("duplicate", [False, True])
def test_enqueue_responses_match_protobufs(duplicate: bool) -> None:
    job_id = "emails:01JE9BFDANF761N0EXXVRV4QFW"
    expected = svc.EnqueueResponse(job_id=job_id, duplicate=duplicate).SerializeToString()
    assert wire.enqueue_response(job_id, duplicate) == expected


def test_enqueue_batch_responses_match_protobufs() -> None:
    outcomes = [("emails:01JE9BFDANF761N0EXXVRV4QFW", False), ("e:01JE9BFDANF761N0EXXVRV4QFX", True)]
    outcomes += [(f"q{n}:01JE9BFDANF761N0EXXVRV4QFY", False) for n in range(300)]
    expected = svc.EnqueueBatchResponse(
        responses=[svc.EnqueueResponse(job_id=job_id, duplicate=duplicate) for job_id, duplicate in outcomes]
    ).SerializeToString()
    assert wire.enqueue_batch_response(outcomes) == expected


@pytest.mark.parametrize("sequence", [0, 1, 127, 128, 2**40, 2**64 - 1])
def test_enqueue_stream_responses_match_protobufs(sequence: int) -> None:
    outcomes = [("emails:01JE9BFDANF761N0EXXVRV4QFW", False), ("e:01JE9BFDANF761N0EXXVRV4QFX", True)]
    expected = svc.EnqueueStreamResponse(
        sequence=sequence,
        responses=[svc.EnqueueResponse(job_id=job_id, duplicate=duplicate) for job_id, duplicate in outcomes],
    ).SerializeToString()
    assert wire.enqueue_stream_response(sequence, outcomes) == expected
