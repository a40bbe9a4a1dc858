"""Break exactly one field of a valid EnqueueRequest, and say which field that is.

The server must then name that very field: a test of the BadRequest path, not just of the
code. The predicates below restate the rules of server/src/jobqueue_server/api/validation.py independently.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from google.protobuf import duration_pb2, timestamp_pb2
from hypothesis import strategies as st

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import validation
from jobqueue_server.ids import QUEUE_NAME_RE
from tests.fuzz import strategies as fs

Breaker = Callable[[st.DrawFn, svc.EnqueueRequest], str]


def duration_fits(value: duration_pb2.Duration, max_ms: int) -> bool:
    if value.seconds < 0 or not 0 <= value.nanos < 1_000_000_000:
        return False
    return value.seconds * 1000 + value.nanos // 1_000_000 <= max_ms


def timestamp_fits(value: timestamp_pb2.Timestamp) -> bool:
    return 0 <= value.seconds <= 253_402_300_799 and 0 <= value.nanos < 1_000_000_000


def _queue(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    request.queue = draw(fs.queue_names().filter(lambda q: QUEUE_NAME_RE.fullmatch(q) is None))
    return "queue"


def _payload(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    over = fs.MAX_PAYLOAD_BYTES + 1 - request.payload.ByteSize()
    request.payload_bytes = b"\xff" * (over + draw(st.integers(0, 64)))
    return "payload"


def _priority(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    known = set(job_pb2.Priority.values())
    request.priority = draw(fs.int32(4, -1).filter(lambda p: p not in known))  # type: ignore[assignment]
    return "priority"


def _max_attempts(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    request.max_attempts = draw(st.integers(fs.INT32_MIN, -1) | st.integers(1001, fs.INT32_MAX))
    return "max_attempts"


def _idempotency_key(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    # Characters, not bytes: 257 two-byte characters are too many, 256 are not.
    limit = validation.MAX_IDEMPOTENCY_KEY_CHARS
    request.idempotency_key = draw(fs.strings_of_length(st.integers(limit + 1, limit + 40), "é"))
    return "idempotency_key"


def _bad_duration(max_ms: int) -> st.SearchStrategy[duration_pb2.Duration]:
    return fs.durations().filter(lambda d: not duration_fits(d, max_ms))


def _delay(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    request.delay.CopyFrom(draw(_bad_duration(validation.MAX_DELAY_MS)))
    return "delay"


def _delay_and_schedule_time(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    request.delay.CopyFrom(draw(fs.valid_durations(fs.MAX_DELAY_S)))
    request.schedule_time.CopyFrom(timestamp_pb2.Timestamp(seconds=draw(st.integers(0, 2**32))))
    return "delay"


def _schedule_time(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    request.ClearField("delay")
    request.schedule_time.CopyFrom(draw(fs.timestamps().filter(lambda t: not timestamp_fits(t))))
    return "schedule_time"


def _lease_duration(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    max_ms = fs.MAX_LEASE_S * 1000
    # Zero, and anything under a millisecond, is refused as well: a lease must last.
    under_a_ms = st.integers(0, 999_999).map(lambda n: duration_pb2.Duration(nanos=n))
    request.lease_duration.CopyFrom(draw(_bad_duration(max_ms) | under_a_ms))
    return "lease_duration"


def _backoff_delay(name: str) -> Breaker:
    def breaker(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
        getattr(request.backoff, name).CopyFrom(draw(_bad_duration(validation.MAX_DELAY_MS)))
        return f"backoff.{name}"

    return breaker


def _multiplier(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    # 0 means "unset" (the default); anything else outside [1, 100] is refused, NaN too.
    request.backoff.multiplier = draw(
        fs.doubles(0.999, 100.000001, -1.0).filter(lambda m: m != 0 and not 1.0 <= m <= 100.0)
    )
    return "backoff.multiplier"


def _jitter(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    if request.backoff.multiplier and not 1.0 <= request.backoff.multiplier <= 100.0:
        request.backoff.multiplier = 2.0
    request.backoff.no_jitter = False
    request.backoff.jitter = draw(
        fs.doubles(1.000001, -0.1, math.inf).filter(lambda j: j != 0 and not 0.0 <= j <= 1.0)
    )
    return "backoff.jitter"


def _too_many_metadata(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    count = draw(st.integers(fs.MAX_METADATA_ENTRIES + 1, fs.MAX_METADATA_ENTRIES + 8))
    request.metadata.update({f"key-{i}": "v" for i in range(count)})
    return "metadata"


def _metadata_key(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    limit = validation.MAX_METADATA_KEY_CHARS
    key = draw(st.just("") | fs.strings_of_length(st.integers(limit + 1, limit + 40), "к"))
    request.metadata[key] = draw(fs.ODD_TEXT)
    return f"metadata[{key!r}]"


def _metadata_value(draw: st.DrawFn, request: svc.EnqueueRequest) -> str:
    limit = validation.MAX_METADATA_VALUE_CHARS
    key = draw(st.text(fs.ANY_CHAR, min_size=1, max_size=12))
    request.metadata[key] = draw(fs.strings_of_length(st.integers(limit + 1, limit + 40), "\x00"))
    return f"metadata[{key!r}]"


BREAKERS: dict[str, Breaker] = {
    "queue": _queue,
    "payload": _payload,
    "priority": _priority,
    "max_attempts": _max_attempts,
    "idempotency_key": _idempotency_key,
    "delay": _delay,
    "delay+schedule_time": _delay_and_schedule_time,
    "schedule_time": _schedule_time,
    "lease_duration": _lease_duration,
    "backoff.initial_delay": _backoff_delay("initial_delay"),
    "backoff.max_delay": _backoff_delay("max_delay"),
    "backoff.multiplier": _multiplier,
    "backoff.jitter": _jitter,
    "metadata (entries)": _too_many_metadata,
    "metadata (key)": _metadata_key,
    "metadata (value)": _metadata_value,
}


@st.composite
def one_field_broken(draw: st.DrawFn) -> tuple[str, svc.EnqueueRequest]:
    """A valid request with one field broken, and the path the server must name."""
    request = draw(fs.valid_enqueue_requests())
    breaker = BREAKERS[draw(st.sampled_from(sorted(BREAKERS)))]
    return breaker(draw, request), request
