"""Job dependencies from the Python client and runtime: a graph enqueued in one enqueue_many
call runs parents first, and the child's handler reads their results; depends_on and the failure
policy from enqueue; what the client refuses before sending anything."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobqueue import (
    AsyncClient,
    Batching,
    Client,
    DependencyFailure,
    InvalidArgument,
    JobContext,
    JobState,
    NotFound,
)
from tests.client.conftest import WorkerRunner


async def test_a_graph_runs_parents_first_and_the_child_reads_their_results(
    client: AsyncClient, workers: WorkerRunner, queue: str
) -> None:
    order: list[str] = []

    async def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        order.append(payload["step"])
        if payload["step"] != "report":
            return {"rows": payload["rows"]}
        parents = [await client.get(parent) for parent in ctx.job.depends_on]
        return {"total": sum(p.result["rows"] for p in parents if p.result)}

    workers.start(workers.new(handlers={queue: handler}, concurrency=4))
    report, *_ = await client.enqueue_many(
        [
            {"queue": queue, "payload": {"step": "report"}, "ref": "report", "depends_on_refs": ["a", "b"]},
            {"queue": queue, "payload": {"step": "a", "rows": 3}, "ref": "a"},
            {"queue": queue, "payload": {"step": "b", "rows": 4}, "ref": "b"},
        ]
    )

    done = await client.wait(report.job_id, timeout=10)
    assert done.result == {"total": 7}
    assert order[-1] == "report" and sorted(order[:2]) == ["a", "b"]
    assert len(done.depends_on) == 2


async def test_the_sync_client_enqueues_a_waiting_job_with_a_policy(sync_client: Client, queue: str) -> None:
    parent = await asyncio.to_thread(sync_client.enqueue, queue, {})
    child = await asyncio.to_thread(
        lambda: sync_client.enqueue(
            queue, {}, depends_on=[parent.job_id], on_dependency_failure="dead_letter"
        )
    )
    job = await asyncio.to_thread(sync_client.get, child.job_id)
    assert job.state is JobState.WAITING
    assert job.on_dependency_failure is DependencyFailure.DEAD_LETTER
    assert (await asyncio.to_thread(sync_client.stats, queue))[0].waiting == 1

    await asyncio.to_thread(sync_client.cancel, parent.job_id)

    dead = await asyncio.to_thread(lambda: sync_client.wait(child.job_id, timeout=10))
    assert dead.state is JobState.DEAD
    assert dead.last_error == f"dependency {parent.job_id} ended CANCELLED"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"depends_on": "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "depends_on"),
        ({"on_dependency_failure": "explode"}, "on_dependency_failure"),
        ({"ref": "a"}, "ref"),
    ],
)
async def test_bad_dependency_options_are_refused_before_sending(
    client: AsyncClient, queue: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await client.enqueue(queue, {}, **options)
    assert refused.value.field == field


async def test_a_graph_larger_than_one_call_is_refused_before_anything_is_sent(
    client: AsyncClient, queue: str
) -> None:
    jobs: list[dict[str, Any]] = [{"queue": queue, "ref": "first"}]
    jobs += [{"queue": queue, "depends_on_refs": ["first"]} for _ in range(1_000)]
    with pytest.raises(InvalidArgument, match="must fit in one call"):
        await client.enqueue_many(jobs)
    (stats,) = await client.stats(queue)
    assert (stats.queued, stats.waiting) == (0, 0)


async def test_with_batching_an_unknown_parent_fails_only_its_own_caller(target: str, queue: str) -> None:
    async with AsyncClient(target, batching=Batching(max_jobs=5, linger=60)) as client:
        parent = "q:01ARZ3NDEKTSV4RRFFQ69G5FAV"  # no such job
        calls = [client.enqueue(queue, {"n": n}) for n in range(4)]
        calls.insert(2, client.enqueue(queue, {}, depends_on=[parent]))
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        (stats,) = await client.stats(queue)

    refused = outcomes.pop(2)
    assert isinstance(refused, NotFound) and refused.field == "depends_on[0]"
    assert all(not isinstance(outcome, BaseException) for outcome in outcomes)
    assert stats.queued == 4
