"""Job ids: unique across the random pool's refills and forks, sorted by their millisecond."""

from __future__ import annotations

import multiprocessing

from jobqueue_server.ids import make_job_id, new_ulid, new_ulids, split_job_id

NOW_MS = 1_733_333_333_333


def test_ids_stay_unique_across_many_refills_of_the_random_pool() -> None:
    ulids = [new_ulid(NOW_MS) for _ in range(3000)] + new_ulids(NOW_MS, 1000) + new_ulids(NOW_MS, 7)
    assert len(set(ulids)) == len(ulids)
    assert all(split_job_id(make_job_id("q", ulid)) == ("q", ulid) for ulid in ulids)


def test_ids_sort_by_their_millisecond() -> None:
    earlier, later = new_ulids(NOW_MS, 50), new_ulids(NOW_MS + 1, 50)
    assert max(earlier) < min(later)
    assert new_ulid(0).startswith("0000000000")


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put(new_ulids(NOW_MS, 100))


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_ulid(NOW_MS)  # the parent's pool now holds parts a copied pool would hand out again
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(30)
    assert child.exitcode == 0
    from_parent = new_ulids(NOW_MS, 100)
    assert not set(from_child) & set(from_parent)
