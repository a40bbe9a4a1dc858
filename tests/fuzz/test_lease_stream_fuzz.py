"""The Lease stream under bad input: odd first messages, odd later ones, a worker that
never reads and one that never writes.

A stream opens (an empty first response) or ends with INVALID_ARGUMENT naming a field of
the message at fault; every ack, fail and extend on an open stream gets exactly one
confirmation, in order (extends, acks, fails); none of it, with no live token, writes.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.rpc import code_pb2, status_pb2
from hypothesis import example, given
from hypothesis import strategies as st

from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.fuzz import strategies as fs
from tests.fuzz.checks import CALL_TIMEOUT_S, check_refusal, status_of
from tests.fuzz.conftest import HOUR_MS, Seeded
from tests.fuzz.keyspace import Keyspace, describe_change
from tests.fuzz.profiles import fuzz_settings
from tests.fuzz.test_settle_and_read_fuzz import SEEDED, job_ids, tokens

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

Kind = svc.ConfirmationKind
IDLE = "<idle>"  # replaced by the test's own empty queue
WAIT_S = 10.0
PICKS = st.integers(0, 10_000)


@dataclass
class StreamEnd:
    responses: list[svc.LeaseResponse]
    status: status_pb2.Status

    @property
    def confirmations(self) -> list[tuple[int, str]]:
        return [(c.kind, c.job_id) for r in self.responses for c in r.confirmations]


async def exchange(stub: Stub, messages: list[svc.LeaseRequest]) -> StreamEnd:
    """Sends `messages`, closes the sending side, reads to the end of the stream."""
    call: Any = stub.Lease(timeout=CALL_TIMEOUT_S)
    responses: list[svc.LeaseResponse] = []
    try:
        for message in messages:
            await call.write(message)
        await call.done_writing()
        while (response := await call.read()) is not grpc.aio.EOF:
            responses.append(response)
    except grpc.aio.AioRpcError as error:
        return StreamEnd(responses, status_of(error))
    code = await call.code()
    assert code == grpc.StatusCode.OK, f"stream ended with {code} but raised nothing"
    return StreamEnd(responses, status_pb2.Status(code=code_pb2.OK))


def settle_entries() -> st.SearchStrategy[dict[str, Any]]:
    ids, toks = job_ids(), tokens()
    return st.fixed_dictionaries(
        {
            "acks": st.lists(fs.ack_requests(ids, toks), max_size=2),
            "fails": st.lists(fs.fail_requests(ids, toks), max_size=2),
            "extends": st.lists(fs.extend_requests(ids, toks), max_size=2),
        }
    )


@st.composite
def first_messages(draw: st.DrawFn) -> svc.LeaseRequest:
    request = svc.LeaseRequest(**draw(settle_entries()))
    if draw(st.integers(0, 4)):  # mostly with a subscribe, so that streams open
        request.subscribe.CopyFrom(draw(fs.subscribes(fs.queue_names())))
    return request


@st.composite
def later_subscribes(draw: st.DrawFn) -> svc.Subscribe:
    """Mostly a resubscribe that keeps the stream's queues and worker, with odd parts."""
    if draw(st.booleans()):
        return draw(fs.subscribes(fs.queue_names()))
    subscribe = svc.Subscribe(
        queues=draw(st.sampled_from([[], [IDLE], [IDLE, IDLE], [IDLE, "other"]])),
        max_in_flight=draw(fs.int32(fs.MAX_IN_FLIGHT, fs.MAX_IN_FLIGHT + 1)),
        worker_id=draw(st.sampled_from(["", "fuzz-worker", "another-worker"])),
    )
    if not draw(st.integers(0, 4)):
        subscribe.lease_duration.CopyFrom(draw(fs.valid_durations(60)))
    return subscribe


@st.composite
def later_messages(draw: st.DrawFn) -> svc.LeaseRequest:
    request = svc.LeaseRequest(**draw(settle_entries()))
    if draw(st.booleans()):
        request.subscribe.CopyFrom(draw(later_subscribes()))
    return request


def _bind(seeded: Seeded, request: svc.LeaseRequest, pick: int, idle: str) -> None:
    """Seeded ids and tokens (chosen by `pick`) into the placeholders; never a job's own
    live token."""
    ids, toks = seeded.job_ids, seeded.all_tokens
    entries: list[Any] = [*request.acks, *request.fails, *request.extends]
    for i, entry in enumerate(entries):
        if entry.job_id == SEEDED:
            entry.job_id = ids[(pick + i) % len(ids)]
        if entry.lease_token == SEEDED:
            entry.lease_token = toks[(pick // len(ids) + i) % len(toks)]
        if seeded.is_live(entry.job_id, entry.lease_token):
            entry.lease_token += "-not"
    queues = [idle if q == IDLE else q for q in request.subscribe.queues]
    del request.subscribe.queues[:]
    request.subscribe.queues.extend(queues)


def _expected_confirmations(request: svc.LeaseRequest) -> list[tuple[int, str]]:
    return [
        *[(Kind.CONFIRMATION_KIND_EXTEND, e.job_id) for e in request.extends],
        *[(Kind.CONFIRMATION_KIND_ACK, a.job_id) for a in request.acks],
        *[(Kind.CONFIRMATION_KIND_FAIL, f.job_id) for f in request.fails],
    ]


def _check_open_stream(end: StreamEnd, message: svc.LeaseRequest) -> None:
    assert end.responses and end.responses[0] == svc.LeaseResponse(), "no empty first response"
    assert not [j for r in end.responses for j in r.jobs], "jobs from an empty queue"
    assert end.confirmations == _expected_confirmations(message)
    for response in end.responses:
        for confirmation in response.confirmations:
            check_refusal(confirmation.status, message)


@fuzz_settings(1.25)
@given(first=first_messages(), pick=PICKS)
@example(first=svc.LeaseRequest(), pick=0)
@example(first=svc.LeaseRequest(acks=[svc.AckRequest(job_id=SEEDED, lease_token=SEEDED)]), pick=2)
@example(first=svc.LeaseRequest(subscribe=svc.Subscribe(queues=["{x}"])), pick=0)
@example(first=svc.LeaseRequest(subscribe=svc.Subscribe(queues=["q"], max_in_flight=-1)), pick=0)
async def test_any_first_lease_message_opens_the_stream_or_ends_it_naming_a_field(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, first: svc.LeaseRequest, pick: int
) -> None:
    _bind(seeded, first, pick, "unused")
    before = await keyspace.snapshot()

    end = await exchange(stub, [first])

    if end.status.code == code_pb2.OK:
        assert first.HasField("subscribe")
        _check_open_stream(end, first)
    else:
        assert check_refusal(end.status, first).code == code_pb2.INVALID_ARGUMENT
        assert not end.responses, "responses before a refused subscribe"
    after = await keyspace.snapshot()
    assert after == before, describe_change(before, after)


@fuzz_settings(1.25)
@given(later=later_messages(), pick=PICKS)
async def test_any_later_lease_message_is_confirmed_entry_by_entry_or_ends_the_stream_naming_a_field(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, later: svc.LeaseRequest, pick: int
) -> None:
    idle = f"idle-{uuid.uuid4().hex[:8]}"
    first = svc.LeaseRequest(subscribe=svc.Subscribe(queues=[idle], max_in_flight=1, worker_id="fuzz-worker"))
    _bind(seeded, later, pick, idle)
    before = await keyspace.snapshot()

    end = await exchange(stub, [first, later])

    if end.status.code == code_pb2.OK:
        _check_open_stream(end, later)
    else:
        refused = check_refusal(end.status, later)
        assert refused.code == code_pb2.INVALID_ARGUMENT
        assert (refused.field or "").startswith("subscribe."), refused.field
        assert end.responses == [svc.LeaseResponse()]
    after = await keyspace.snapshot()
    assert after == before, describe_change(before, after)


async def _counts(stub: Stub, queue: str) -> tuple[int, int]:
    """(queued, active) of `queue`; answering at all shows the server is still serving."""
    (counts,) = (await stub.Stats(svc.StatsRequest(queue=queue), timeout=CALL_TIMEOUT_S)).queues
    return counts.queued, counts.active


async def _wait_counts(stub: Stub, queue: str, expected: tuple[int, int]) -> None:
    async with asyncio.timeout(WAIT_S):
        while await _counts(stub, queue) != expected:
            await asyncio.sleep(0.02)


async def test_a_stream_that_never_reads_holds_only_its_window_and_frees_it_when_cancelled(
    stub: Stub,
) -> None:
    queue, jobs, window = f"stuck-{uuid.uuid4().hex[:8]}", 40, 30
    big = b"\x00" * (256 * 1024)  # 10 MB in all: far past the HTTP/2 flow-control window
    batch = [svc.EnqueueRequest(queue=queue, payload_bytes=big) for _ in range(jobs)]
    await stub.EnqueueBatch(svc.EnqueueBatchRequest(requests=batch), timeout=CALL_TIMEOUT_S)
    subscribe = svc.Subscribe(queues=[queue], max_in_flight=window, worker_id="never-reads")
    subscribe.lease_duration.FromMilliseconds(HOUR_MS)
    call: Any = stub.Lease()
    await call.write(svc.LeaseRequest(subscribe=subscribe))

    await _wait_counts(stub, queue, (jobs - window, window))  # the server answers meanwhile
    other = (await stub.Enqueue(svc.EnqueueRequest(queue=queue), timeout=CALL_TIMEOUT_S)).job_id
    assert other.startswith(f"{queue}:")
    call.cancel()

    await _wait_counts(stub, queue, (jobs + 1, 0))


async def test_a_stream_that_never_sends_a_message_changes_nothing_and_ends_on_cancel(
    stub: Stub, keyspace: Keyspace, seeded: Seeded
) -> None:
    before = await keyspace.snapshot()
    call: Any = stub.Lease()
    assert await _counts(stub, seeded.queue) == (1, 2)  # served while the stream hangs open
    call.cancel()
    assert await call.code() == grpc.StatusCode.CANCELLED
    assert await keyspace.snapshot() == before


async def test_a_stream_closed_before_its_first_message_ends_without_a_response(
    stub: Stub, keyspace: Keyspace
) -> None:
    before = await keyspace.snapshot()
    end = await exchange(stub, [])
    assert (end.status.code, end.responses) == (code_pb2.OK, [])
    assert await keyspace.snapshot() == before


async def test_a_first_message_that_does_not_subscribe_ends_the_stream_naming_subscribe(
    stub: Stub, seeded: Seeded
) -> None:
    job_id = seeded.active[0]
    first = svc.LeaseRequest(acks=[svc.AckRequest(job_id=job_id, lease_token=seeded.live_tokens[job_id])])
    end = await exchange(stub, [first])
    refused = check_refusal(end.status, first)
    assert (refused.code, refused.field) == (code_pb2.INVALID_ARGUMENT, "subscribe")
    assert await _counts(stub, seeded.queue) == (1, 2), "the ack in a refused first message was applied"
