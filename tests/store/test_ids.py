"""jobqueue_server.ids: `<queue>:<ulid>` job ids, pure functions."""

from __future__ import annotations

import itertools

import pytest

from jobqueue_server import ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
A_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


def _ulid_ms(ulid: str) -> int:
    """The creation millisecond a ulid's first 10 characters carry."""
    value = 0
    for char in ulid[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


NOW_MS = 1_712_345_678_901


def test_a_ulid_is_26_crockford_base32_characters() -> None:
    for ulid in (ids.new_ulid(NOW_MS) for _ in range(100)):
        assert len(ulid) == 26 and set(ulid) <= set(CROCKFORD), ulid


def test_a_ulid_carries_its_creation_millisecond() -> None:
    assert _ulid_ms(ids.new_ulid(NOW_MS)) == NOW_MS


def test_ulids_sort_by_creation_time() -> None:
    times = [
        1_700_000_000_000 + step for step in itertools.accumulate([1, 2, 31, 32, 1_000, 86_400_000] * 20)
    ]

    made = [ids.new_ulid(ms) for ms in times]

    assert sorted(made) == made


def test_ulids_made_in_the_same_millisecond_are_unique() -> None:
    assert len({ids.new_ulid(NOW_MS) for _ in range(10_000)}) == 10_000


@pytest.mark.parametrize("queue", ["q", "emails", "tenant:42:emails", "a.b-c_d", "x" * 128, "::"])
def test_split_job_id_returns_the_queue_and_ulid_it_was_made_of(queue: str) -> None:
    assert ids.split_job_id(ids.make_job_id(queue, A_ULID)) == (queue, A_ULID)


def test_split_job_id_takes_the_ulid_after_the_last_colon() -> None:
    assert ids.split_job_id(f"tenant:42:{A_ULID}") == ("tenant:42", A_ULID)


@pytest.mark.parametrize(
    "job_id",
    [
        "",
        A_ULID,
        f":{A_ULID}",
        "q:",
        "q:01ARZ3NDEK",
        f"q:{A_ULID}0",
        f"q:{A_ULID[:-1]}U",
        f"q:{A_ULID[:-1]}!",
        f"q:{A_ULID}:",
        f"{{q}}:{A_ULID}",
        f"my queue:{A_ULID}",
        f"{'x' * 129}:{A_ULID}",
    ],
)
def test_split_job_id_rejects_malformed_ids(job_id: str) -> None:
    assert ids.split_job_id(job_id) is None


def test_a_fresh_job_id_round_trips() -> None:
    job_id = ids.make_job_id("jobs:v2", ids.new_ulid(NOW_MS))

    parts = ids.split_job_id(job_id)

    assert parts is not None and ids.make_job_id(*parts) == job_id
