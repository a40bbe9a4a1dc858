"""Hypothesis strategies for the service's request messages: valid, odd and malformed.

Values lean on the edges the server's rules draw (server/src/jobqueue_server/api/validation.py): one past each
limit, zero, negative, the int32/int64 extremes, NaN and infinities, Unicode and control
characters, braces (the Redis hash-tag characters) in queue names.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from hypothesis import strategies as st

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.api import validation
from jobqueue_server.config import ServerSettings

S = st.SearchStrategy

_DEFAULTS = ServerSettings.model_fields
MAX_PAYLOAD_BYTES: int = _DEFAULTS["max_payload_bytes"].default
MAX_BATCH: int = _DEFAULTS["max_batch"].default
MAX_IN_FLIGHT: int = _DEFAULTS["max_in_flight"].default
MAX_METADATA_ENTRIES: int = _DEFAULTS["max_metadata_entries"].default
MAX_LEASE_S = int(_DEFAULTS["max_lease_seconds"].default)
MAX_DELAY_S = validation.MAX_DELAY_MS // 1000
# Deepest JSON payload (objects in objects) the Python protobuf runtime can still parse
# inside an EnqueueRequest. One level less is the deepest a LeaseResponse can carry.
MAX_WIRE_NESTING = 33

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Any Unicode scalar value but surrogates (which protobuf strings cannot hold), so control
# characters, NUL, combining marks, right-to-left marks and emoji included.
ANY_CHAR = st.characters(codec="utf-8")
ODD_TEXT = st.text(ANY_CHAR, max_size=24)
CONTROL_TEXT = st.text(st.characters(categories=["Cc"]), min_size=1, max_size=4)
QUEUE_CHARS = "ABCxyz019._:-"
QUEUE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
ULID = st.from_regex(r"[0-9A-HJKMNP-TV-Z]{26}", fullmatch=True)


def int32(*edges: int) -> S[int]:
    return st.one_of(
        st.sampled_from([0, 1, -1, INT32_MIN, INT32_MAX, *edges]), st.integers(INT32_MIN, INT32_MAX)
    )


def doubles(*edges: float) -> S[float]:
    return st.one_of(st.sampled_from([0.0, -0.0, 1.0, *edges]), st.floats())


def strings_of_length(lengths: S[int], char: str = "x") -> S[str]:
    """Long strings built, not drawn character by character (fast at any length)."""
    return lengths.map(lambda n: char * n)


# -- queues and ids ----------------------------------------------------------------------------

VALID_QUEUES = st.one_of(
    st.text(st.sampled_from(QUEUE_CHARS), min_size=1, max_size=12),
    st.text(st.sampled_from(QUEUE_ALPHABET), min_size=1, max_size=24),
    st.just("q" * 128),
)


def queue_names() -> S[str]:
    """Valid names and every way of breaking the grammar."""
    return st.one_of(
        VALID_QUEUES,
        st.just(""),
        strings_of_length(st.integers(129, 400), "q"),
        st.tuples(VALID_QUEUES, st.sampled_from(["{", "}", "{}", "}{", "{x}"]), VALID_QUEUES).map("".join),
        VALID_QUEUES.map(lambda q: "{" + q + "}"),
        st.tuples(VALID_QUEUES, CONTROL_TEXT).map("".join),
        ODD_TEXT,
        st.sampled_from([" ", "a b", "q\n", "queue/1", "q*", "q?", "q[1]", "é", "队列", "🚀", "q\x00"]),
    )


def unknown_job_ids() -> S[str]:
    """Well-formed ids of jobs that do not exist."""
    return st.tuples(VALID_QUEUES, ULID).map(":".join)


def malformed_job_ids() -> S[str]:
    return st.one_of(
        st.just(""),
        ODD_TEXT,
        ULID,
        ULID.map(lambda u: ":" + u),
        ULID.map(lambda u: "q:" + u.lower()),
        st.tuples(VALID_QUEUES, ULID).map(lambda t: f"{t[0]}:{t[1][:25]}"),
        st.tuples(VALID_QUEUES, ULID).map(lambda t: f"{t[0]}:{t[1]}0"),
        st.tuples(queue_names(), ULID).map(":".join),
        strings_of_length(st.integers(129, 2000), "q").map(lambda q: q + ":01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    )


def tokens() -> S[str]:
    """Lease tokens that are not current: random, empty, over-long, Unicode."""
    return st.one_of(
        st.just(""),
        ODD_TEXT,
        st.from_regex(r"[0-9a-f]{32}\.[0-9]", fullmatch=True),
        strings_of_length(st.integers(validation.MAX_TOKEN_CHARS, 1000), "t"),
    )


# -- durations, times, numbers -----------------------------------------------------------------


def durations() -> S[duration_pb2.Duration]:
    seconds = st.one_of(
        st.sampled_from([0, 1, -1, MAX_LEASE_S, MAX_LEASE_S + 1, MAX_DELAY_S, MAX_DELAY_S + 1]),
        st.sampled_from([INT64_MIN, INT64_MAX, 315_576_000_000, -315_576_000_000]),
        st.integers(-(10**6), 10**6),
        st.integers(INT64_MIN, INT64_MAX),
    )
    nanos = st.one_of(
        st.sampled_from([0, 999_999, 1_000_000, 999_999_999, 1_000_000_000, -1]),
        st.integers(INT32_MIN, INT32_MAX),
    )
    return st.builds(duration_pb2.Duration, seconds=seconds, nanos=nanos)


def valid_durations(max_s: int, min_ms: int = 0) -> S[duration_pb2.Duration]:
    return st.integers(min_ms, max_s * 1000).map(
        lambda ms: duration_pb2.Duration(seconds=ms // 1000, nanos=ms % 1000 * 1_000_000)
    )


def timestamps() -> S[timestamp_pb2.Timestamp]:
    seconds = st.one_of(
        st.sampled_from([0, -1, 253_402_300_799, 253_402_300_800, -62_135_596_800, INT64_MIN, INT64_MAX]),
        st.integers(0, 253_402_300_799),
        st.integers(INT64_MIN, INT64_MAX),
    )
    nanos = st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1]), st.integers(INT32_MIN, INT32_MAX))
    return st.builds(timestamp_pb2.Timestamp, seconds=seconds, nanos=nanos)


# -- payloads ----------------------------------------------------------------------------------


def _json(numbers: S[float]) -> S[Any]:
    return st.recursive(
        st.one_of(st.none(), st.booleans(), numbers, ODD_TEXT),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ODD_TEXT, inner, max_size=3),
        max_leaves=5,
    )


# Any value a Struct can hold, NaN and infinities too (refused at enqueue: JSON has none).
_JSON = _json(st.floats())
_FINITE_JSON = _json(st.floats(allow_nan=False, allow_infinity=False))


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def nested_payload(depth: int) -> struct_pb2.Struct:
    """{"a": {"a": ... {"a": "leaf"}}}, `depth` objects deep, built in place."""
    root = struct_pb2.Struct()
    current = root
    for _ in range(depth - 1):
        current = current.fields["a"].struct_value
    current.fields["a"].string_value = "leaf"
    return root


def _sized(size: int) -> struct_pb2.Struct:
    """{"b": "xx..."} whose encoding is exactly `size` bytes."""
    struct = _struct({"b": "x" * size})
    return _struct({"b": "x" * (2 * size - struct.ByteSize())})


# Built once: a megabyte drawn afresh for every example would dominate the run time.
_LIMIT_STRUCTS = [_sized(MAX_PAYLOAD_BYTES + delta) for delta in (-1, 0, 1, 1000)]


def structs() -> S[struct_pb2.Struct]:
    """JSON objects: random, deeply nested, or one large string at the payload limit."""
    return st.one_of(
        st.dictionaries(ODD_TEXT, _JSON, max_size=4).map(_struct),
        st.integers(1, MAX_WIRE_NESTING - 1).map(nested_payload),
        st.sampled_from(_LIMIT_STRUCTS),
    )


def payload_bytes() -> S[bytes]:
    return st.one_of(
        st.binary(max_size=32),
        st.sampled_from([MAX_PAYLOAD_BYTES - 1, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1]).map(
            lambda n: b"\x00" * n
        ),
    )


def metadata() -> S[dict[str, str]]:
    key_limit, value_limit = validation.MAX_METADATA_KEY_CHARS, validation.MAX_METADATA_VALUE_CHARS
    return st.one_of(
        st.dictionaries(ODD_TEXT, ODD_TEXT, max_size=4),
        st.integers(MAX_METADATA_ENTRIES, MAX_METADATA_ENTRIES + 3).map(
            lambda n: {f"k{i}": "v" for i in range(n)}
        ),
        strings_of_length(st.integers(key_limit, key_limit + 1), "k").map(lambda k: {k: "v"}),
        strings_of_length(st.integers(value_limit, value_limit + 1), "v").map(lambda v: {"k": v}),
    )


def backoffs() -> S[job_pb2.BackoffPolicy]:
    @st.composite
    def build(draw: st.DrawFn) -> job_pb2.BackoffPolicy:
        policy = job_pb2.BackoffPolicy(
            multiplier=draw(doubles(100.0, 100.000001, 0.5, -1.0)),
            jitter=draw(doubles(0.5, 1.000001, -0.1)),
            no_jitter=draw(st.booleans()),
        )
        if draw(st.booleans()):
            policy.initial_delay.CopyFrom(draw(durations()))
        if draw(st.booleans()):
            policy.max_delay.CopyFrom(draw(durations()))
        return policy

    return build()


# -- whole requests ----------------------------------------------------------------------------


@st.composite
def enqueue_requests(draw: st.DrawFn) -> svc.EnqueueRequest:
    """Every field drawn from anything the message type can carry."""
    request = svc.EnqueueRequest(
        queue=draw(queue_names()),
        priority=draw(int32(1, 2, 3, 4)),  # type: ignore[arg-type]
        max_attempts=draw(int32(1000, 1001)),
        idempotency_key=draw(st.one_of(ODD_TEXT, strings_of_length(st.integers(250, 300), "i"))),
        metadata=draw(metadata()),
    )
    for name, values in (
        ("payload", structs()),
        ("delay", durations()),
        ("schedule_time", timestamps()),
        ("lease_duration", durations()),
        ("backoff", backoffs()),
    ):
        if draw(st.booleans()):
            getattr(request, name).CopyFrom(draw(values))
    if draw(st.booleans()):
        request.payload_bytes = draw(payload_bytes())
    return request


@st.composite
def valid_enqueue_requests(draw: st.DrawFn, queues: S[str] = VALID_QUEUES) -> svc.EnqueueRequest:
    """Requests the server must accept: every field within its rule."""
    request = svc.EnqueueRequest(
        queue=draw(queues),
        payload=_struct(draw(st.dictionaries(ODD_TEXT, _FINITE_JSON, max_size=3))),
        payload_bytes=draw(st.binary(max_size=16)),
        priority=draw(st.sampled_from(job_pb2.Priority.values())),
        max_attempts=draw(st.integers(0, 1000)),
        idempotency_key=draw(ODD_TEXT),
        metadata=draw(st.dictionaries(st.text(ANY_CHAR, min_size=1, max_size=8), ODD_TEXT, max_size=3)),
    )
    if draw(st.booleans()):
        request.delay.CopyFrom(draw(valid_durations(MAX_DELAY_S)))
    if draw(st.booleans()):
        request.lease_duration.CopyFrom(draw(valid_durations(MAX_LEASE_S, min_ms=1)))
    if draw(st.booleans()):
        request.backoff.CopyFrom(
            job_pb2.BackoffPolicy(
                multiplier=draw(st.floats(1.0, 100.0)),
                jitter=draw(st.floats(0.0, 1.0)),
                no_jitter=draw(st.booleans()),
            )
        )
    return request


def ack_requests(job_ids: S[str], tokens: S[str]) -> S[svc.AckRequest]:
    @st.composite
    def build(draw: st.DrawFn) -> svc.AckRequest:
        request = svc.AckRequest(job_id=draw(job_ids), lease_token=draw(tokens))
        if draw(st.booleans()):
            request.result.CopyFrom(draw(structs()))
        return request

    return build()


def fail_requests(job_ids: S[str], tokens: S[str]) -> S[svc.FailRequest]:
    @st.composite
    def build(draw: st.DrawFn) -> svc.FailRequest:
        request = svc.FailRequest(
            job_id=draw(job_ids),
            lease_token=draw(tokens),
            error=draw(st.one_of(ODD_TEXT, strings_of_length(st.integers(4000, 10_000), "é"))),
            non_retryable=draw(st.booleans()),
        )
        if draw(st.booleans()):
            request.retry_delay.CopyFrom(draw(durations()))
        return request

    return build()


def extend_requests(job_ids: S[str], tokens: S[str]) -> S[svc.ExtendRequest]:
    @st.composite
    def build(draw: st.DrawFn) -> svc.ExtendRequest:
        request = svc.ExtendRequest(job_id=draw(job_ids), lease_token=draw(tokens))
        if draw(st.booleans()):
            request.lease_duration.CopyFrom(draw(durations()))
        return request

    return build()


@st.composite
def subscribes(draw: st.DrawFn, queues: S[str]) -> svc.Subscribe:
    subscribe = svc.Subscribe(
        queues=draw(
            st.one_of(
                st.lists(queues, max_size=4),
                st.integers(validation.MAX_SUBSCRIBED_QUEUES, validation.MAX_SUBSCRIBED_QUEUES + 2).map(
                    lambda n: [f"q{i}" for i in range(n)]
                ),
            )
        ),
        max_in_flight=draw(int32(MAX_IN_FLIGHT, MAX_IN_FLIGHT + 1)),
        worker_id=draw(st.one_of(ODD_TEXT, strings_of_length(st.integers(255, 300), "w"))),
    )
    if draw(st.booleans()):
        subscribe.lease_duration.CopyFrom(draw(durations()))
    return subscribe
