"""Ack, Fail, Extend, Cancel, Retry, GetStatus and Stats against jobs in every state.

Ids are the seeded jobs', unknown but well-formed, or malformed; tokens are random, stale
(of a lease already settled), foreign (another job's live lease) or over-long, never the
one live token of the job named. So every settle call must be refused, and no call of this
file may change a single key: after each test the seeded queue counts as it did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.rpc import code_pb2
from hypothesis import given
from hypothesis import strategies as st

from jobqueue.v1 import job_queue_service_pb2 as svc
from tests.fuzz import strategies as fs
from tests.fuzz.checks import CALL_TIMEOUT_S, Refused, call_checked
from tests.fuzz.conftest import Seeded
from tests.fuzz.keyspace import Keyspace
from tests.fuzz.profiles import fuzz_settings

if TYPE_CHECKING:
    from jobqueue.v1.job_queue_service_pb2_grpc import JobQueueServiceAsyncStub as Stub

# Drawn by the strategies, then replaced with a seeded id or token (the seeded jobs exist
# only once the fixture ran, after the strategies were built).
SEEDED = "<seeded>"


def job_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.just(SEEDED), fs.unknown_job_ids(), fs.malformed_job_ids())


def tokens() -> st.SearchStrategy[str]:
    return st.one_of(st.just(SEEDED), fs.tokens())


def _bind(seeded: Seeded, request: Any, data: st.DataObject, ids: tuple[str, ...]) -> None:
    """Fills SEEDED placeholders with one of `ids` and a seeded token that is not its own."""
    if request.job_id == SEEDED:
        request.job_id = data.draw(st.sampled_from(ids), label="seeded id")
    if getattr(request, "lease_token", None) == SEEDED:
        request.lease_token = data.draw(st.sampled_from(seeded.all_tokens), label="seeded token")
    if seeded.is_live(request.job_id, getattr(request, "lease_token", "")):
        request.lease_token += "-not"


def _checks_code(seeded: Seeded, outcome: object, job_id: str) -> None:
    assert isinstance(outcome, Refused), f"accepted: {job_id!r}"
    if outcome.code == code_pb2.NOT_FOUND:
        assert job_id not in seeded.job_ids, "a seeded job reported missing"
    if outcome.code == code_pb2.FAILED_PRECONDITION:
        assert job_id in seeded.job_ids, "an unknown job reported in the wrong state"


async def _assert_seeded_unchanged(stub: Stub, seeded: Seeded) -> None:
    """The server still answers, and the seeded queue holds what it held."""
    response = await stub.Stats(svc.StatsRequest(queue=seeded.queue), timeout=CALL_TIMEOUT_S)
    (counts,) = response.queues
    assert (counts.queued, counts.scheduled, counts.active, counts.completed, counts.dead) == (1, 1, 2, 1, 1)
    assert counts.cancelled == 1


@fuzz_settings(1)
@given(request=fs.ack_requests(job_ids(), tokens()), data=st.data())
async def test_an_ack_without_the_live_token_is_refused_and_changes_nothing(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, request: svc.AckRequest, data: st.DataObject
) -> None:
    _bind(seeded, request, data, seeded.job_ids)
    _checks_code(seeded, await call_checked(keyspace, stub.Ack, request), request.job_id)
    await _assert_seeded_unchanged(stub, seeded)


@fuzz_settings(1)
@given(request=fs.fail_requests(job_ids(), tokens()), data=st.data())
async def test_a_fail_without_the_live_token_is_refused_and_changes_nothing(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, request: svc.FailRequest, data: st.DataObject
) -> None:
    _bind(seeded, request, data, seeded.job_ids)
    _checks_code(seeded, await call_checked(keyspace, stub.Fail, request), request.job_id)
    await _assert_seeded_unchanged(stub, seeded)


@fuzz_settings(1)
@given(request=fs.extend_requests(job_ids(), tokens()), data=st.data())
async def test_an_extend_without_the_live_token_is_refused_and_changes_nothing(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, request: svc.ExtendRequest, data: st.DataObject
) -> None:
    _bind(seeded, request, data, seeded.job_ids)
    _checks_code(seeded, await call_checked(keyspace, stub.Extend, request), request.job_id)
    await _assert_seeded_unchanged(stub, seeded)


@fuzz_settings(1)
@given(job_id=job_ids(), data=st.data())
async def test_cancel_of_a_finished_job_is_refused_and_changes_nothing(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, job_id: str, data: st.DataObject
) -> None:
    request = svc.CancelRequest(job_id=job_id)
    _bind(seeded, request, data, (seeded.completed, seeded.dead, seeded.cancelled))
    _checks_code(seeded, await call_checked(keyspace, stub.Cancel, request), request.job_id)
    await _assert_seeded_unchanged(stub, seeded)


@fuzz_settings(1)
@given(job_id=job_ids(), data=st.data())
async def test_retry_of_a_job_that_is_not_dead_or_cancelled_is_refused_and_changes_nothing(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, job_id: str, data: st.DataObject
) -> None:
    request = svc.RetryRequest(job_id=job_id)
    _bind(seeded, request, data, (seeded.queued, seeded.scheduled, *seeded.active, seeded.completed))
    _checks_code(seeded, await call_checked(keyspace, stub.Retry, request), request.job_id)
    await _assert_seeded_unchanged(stub, seeded)


@fuzz_settings(1)
@given(job_id=job_ids(), data=st.data())
async def test_get_status_of_any_id_answers_or_is_refused_and_never_writes(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, job_id: str, data: st.DataObject
) -> None:
    request = svc.GetStatusRequest(job_id=job_id)
    _bind(seeded, request, data, seeded.job_ids)
    before = await keyspace.snapshot()
    outcome = await call_checked(keyspace, stub.GetStatus, request)
    if not isinstance(outcome, Refused):
        assert outcome.job.id == request.job_id
        assert await keyspace.snapshot() == before
    else:
        _checks_code(seeded, outcome, request.job_id)


@fuzz_settings(1)
@given(queue=fs.queue_names())
async def test_stats_of_any_queue_name_answers_or_is_refused_naming_queue_and_never_writes(
    stub: Stub, keyspace: Keyspace, seeded: Seeded, queue: str
) -> None:
    before = await keyspace.snapshot()
    outcome = await call_checked(keyspace, stub.Stats, svc.StatsRequest(queue=queue))
    if isinstance(outcome, Refused):
        assert (outcome.code, outcome.field) == (code_pb2.INVALID_ARGUMENT, "queue")
    else:
        assert [q.queue for q in outcome.queues] == ([queue] if queue else [seeded.queue])
        assert await keyspace.snapshot() == before
    await _assert_seeded_unchanged(stub, seeded)
