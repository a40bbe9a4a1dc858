"""Conversions and error parsing that need no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import InvalidArgument
from jobqueue.backoff import ReconnectBackoff, poll_intervals
from jobqueue.convert import from_struct, to_duration, to_struct, to_timestamp
from jobqueue.execution import describe
from jobqueue.messages import batches, enqueue_request
from jobqueue.models import JobSpec
from jobqueue.outbox import Outbox
from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc


def test_json_values_round_trip_with_whole_numbers_as_int() -> None:
    value = {"i": 3, "f": 2.5, "s": "x", "b": False, "n": None, "l": [1, {"k": [True]}], "big": 2**53}

    assert from_struct(to_struct(value)) == value
    assert isinstance(from_struct(to_struct({"i": 3}))["i"], int)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"x": 2**53 + 1}, "payload.x"),
        ({"x": float("nan")}, "payload.x"),
        ({"a": [b"raw"]}, "payload.a[0]"),
        ({1: "key"}, "payload"),
    ],
)
def test_values_json_cannot_carry_exactly_are_refused_with_their_path(
    value: dict[object, object], path: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        to_struct(value)  # type: ignore[arg-type]

    assert caught.value.field == path


def test_durations_and_timestamps() -> None:
    assert to_duration(1.5, "d").ToTimedelta() == timedelta(seconds=1.5)
    assert to_duration(timedelta(minutes=2), "d").seconds == 120
    with pytest.raises(InvalidArgument):
        to_duration(-1, "delay")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert to_timestamp(at, "run_at").ToDatetime(tzinfo=UTC) == at


def test_batches_split_by_count_and_size() -> None:
    small = [enqueue_request(JobSpec(queue="q")) for _ in range(2500)]
    large = [enqueue_request(JobSpec(queue="q", payload=b"x" * (3 * 1024 * 1024))) for _ in range(4)]

    assert [len(b) for b in batches(small)] == [1000, 1000, 500]
    assert [len(b) for b in batches(large)] == [2, 2]


def test_reconnect_backoff_grows_with_full_jitter_up_to_the_cap_and_resets() -> None:
    backoff = ReconnectBackoff(base=0.1, cap=1.0, reset_after=30)

    delays = [backoff.next_delay() for _ in range(50)]

    assert all(0 <= d <= 1.0 for d in delays) and delays[0] <= 0.1
    backoff.connection_ended(lasted=5)
    assert backoff.failures == 50
    backoff.connection_ended(lasted=31)
    assert backoff.failures == 0


def test_poll_intervals_grow_to_half_a_second() -> None:
    intervals = poll_intervals()
    first = [next(intervals) for _ in range(20)]

    assert first[0] == 0.01 and first == sorted(first) and first[-1] == 0.5


def test_describe_keeps_the_message_and_the_end_of_the_traceback() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise KeyError("missing")
        deep(n - 1)

    try:
        deep(50)
    except KeyError as error:
        text = describe(error)

    lines = text.splitlines()
    assert lines[0] == "KeyError: 'missing'" and lines[-1] == "KeyError: 'missing'"
    assert len(lines) <= 21


async def test_the_outbox_coalesces_everything_ready_into_one_request() -> None:
    outbox = Outbox(job_pb2.DURABILITY_FSYNCED)
    outbox.ack(("a", "t", None, 1_500_000))
    outbox.ack(("r", "t", to_struct({"n": 1}), -1))
    outbox.put(svc.FailRequest(job_id="b", lease_token="t"))
    outbox.put(svc.ExtendRequest(job_id="c", lease_token="t"))
    outbox.resubscribe(svc.Subscribe(max_in_flight=1))
    outbox.close()

    request = await outbox.next()

    assert request is not None
    assert (
        [a.job_id for a in request.acks],
        [f.job_id for f in request.fails],
        [e.job_id for e in request.extends],
    ) == (["a", "r"], ["b"], ["c"])
    assert [(a.lease_token, a.durability, a.HasField("result")) for a in request.acks] == [
        ("t", job_pb2.DURABILITY_FSYNCED, False),
        ("t", job_pb2.DURABILITY_FSYNCED, True),
    ]
    assert from_struct(request.acks[1].result) == {"n": 1}
    # The handler's run, when the worker timed it, goes with the ack (the server's histogram).
    assert [a.handler_duration.ToNanoseconds() for a in request.acks] == [1_500_000, 0]
    assert [a.HasField("handler_duration") for a in request.acks] == [True, False]
    assert request.subscribe.max_in_flight == 1
    assert await outbox.next() is None


async def test_the_outbox_splits_what_would_not_fit_one_request() -> None:
    outbox = Outbox()
    big = to_struct({"blob": "x" * (1024 * 1024)})
    for n in range(6):
        outbox.ack((f"q:{n}", "t", big, -1))
    outbox.close()

    sizes = []
    while (request := await outbox.next()) is not None:
        sizes.append(len(request.acks))

    assert sizes == [3, 3]  # 4 MiB a message
