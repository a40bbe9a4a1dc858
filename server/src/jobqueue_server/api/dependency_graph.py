"""Validation of job dependencies (docs/dependencies.md): the ids of `depends_on`, the policy, and
the graph a batch draws with `ref` and `depends_on_refs`, refused when it has a cycle."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from jobqueue.v1 import job_pb2
from jobqueue.v1 import job_queue_service_pb2 as svc
from jobqueue_server.errors import DependencyNotFound, FieldViolation
from jobqueue_server.ids import make_job_id, split_job_id
from jobqueue_server.store import DependencyFailure

#: Parents one job may wait for (each costs the job's parents hash a field, and its
#: resolution one step).
MAX_DEPENDENCIES = 1_000
MAX_REF_CHARS = 128

_POLICIES = {
    job_pb2.DEPENDENCY_FAILURE_POLICY_UNSPECIFIED: DependencyFailure.CANCEL,
    job_pb2.DEPENDENCY_FAILURE_POLICY_CANCEL: DependencyFailure.CANCEL,
    job_pb2.DEPENDENCY_FAILURE_POLICY_DEAD_LETTER: DependencyFailure.DEAD_LETTER,
    job_pb2.DEPENDENCY_FAILURE_POLICY_RUN_ANYWAY: DependencyFailure.RUN_ANYWAY,
}


def parents(
    request: svc.EnqueueRequest, prefix: str, batch_parents: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The job ids the job waits for: `depends_on`, then those of `batch_parents` (the jobs of
    its batch its refs name; None outside a batch, where refs are refused). No id twice."""
    if batch_parents is None and (request.ref or request.depends_on_refs):
        field = "ref" if request.ref else "depends_on_refs"
        raise FieldViolation(f"{prefix}{field}", "is only allowed inside EnqueueBatch or EnqueueStream")
    ids = list(request.depends_on)
    for index, value in enumerate(ids):
        if split_job_id(value) is None:
            raise FieldViolation(
                f"{prefix}depends_on[{index}]", "is not a job id (<queue>:<26-character id>)"
            )
    ids += batch_parents or ()
    if len(ids) > MAX_DEPENDENCIES:
        raise FieldViolation(f"{prefix}depends_on", f"must name at most {MAX_DEPENDENCIES:,} jobs")
    return tuple(dict.fromkeys(ids))


#: The ids among those given that name no stored job (Store.dependencies.missing).
FindMissing = Callable[[Sequence[str]], Awaitable[list[str]]]


async def require_parents(
    requests: Sequence[svc.EnqueueRequest], missing: FindMissing, *, batch: bool
) -> None:
    """Refuses (NOT_FOUND, naming the field) jobs whose `depends_on` names a job that does not
    exist; one round trip for the whole request, none when no job has dependencies."""
    named = [
        (f"requests[{i}].depends_on[{j}]" if batch else f"depends_on[{j}]", parent)
        for i, request in enumerate(requests)
        for j, parent in enumerate(request.depends_on)
    ]
    if not named:
        return
    absent = set(await missing([parent for _, parent in named]))
    for field, parent in named:
        if parent in absent:
            raise DependencyNotFound(field, f"job {parent} not found")


def policy(request: svc.EnqueueRequest, prefix: str) -> DependencyFailure:
    chosen = _POLICIES.get(request.on_dependency_failure)
    if chosen is None:
        raise FieldViolation(f"{prefix}on_dependency_failure", "is not a known policy")
    return chosen


def batch_parents(
    requests: Sequence[svc.EnqueueRequest], ulids: Sequence[str], stored: Sequence[str]
) -> list[tuple[str, ...]]:
    """For each request of a batch, the ids of the jobs of the batch its `depends_on_refs` name
    (`stored`: the queue or partition each job goes to).

    Refused, naming the field, when a ref is malformed or given twice, when a reference names no
    job of the batch, or when the references form a cycle."""
    by_ref: dict[str, int] = {}
    for index, request in enumerate(requests):
        ref = request.ref
        if not ref:
            continue
        if len(ref) > MAX_REF_CHARS or not ref.isprintable():
            raise FieldViolation(
                f"requests[{index}].ref", f"must be 1 to {MAX_REF_CHARS} printable characters"
            )
        if ref in by_ref:
            raise FieldViolation(
                f"requests[{index}].ref", f"{ref!r} is also the ref of requests[{by_ref[ref]}]"
            )
        by_ref[ref] = index
    edges: list[list[int]] = []
    for index, request in enumerate(requests):
        named = []
        for position, ref in enumerate(request.depends_on_refs):
            parent = by_ref.get(ref)
            if parent is None:
                raise FieldViolation(
                    f"requests[{index}].depends_on_refs[{position}]",
                    f"no job of this request has the ref {ref!r}",
                )
            named.append(parent)
        edges.append(named)
    _refuse_cycles(requests, edges)
    return [tuple(make_job_id(stored[parent], ulids[parent]) for parent in named) for named in edges]


def _refuse_cycles(requests: Sequence[svc.EnqueueRequest], edges: list[list[int]]) -> None:
    """Kahn's algorithm: jobs whose parents are all placed are placed; any left over wait on a
    cycle, of which the first is named."""
    waiting_on = [len(set(named)) for named in edges]
    children: list[list[int]] = [[] for _ in edges]
    for child, named in enumerate(edges):
        for parent in set(named):
            children[parent].append(child)
    ready = [index for index, count in enumerate(waiting_on) if count == 0]
    placed = 0
    while ready:
        index = ready.pop()
        placed += 1
        for child in children[index]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                ready.append(child)
    if placed < len(edges):
        # Every job left has a parent left: walking up from one must come back round.
        node, seen = next(index for index, count in enumerate(waiting_on) if count > 0), set()
        while node not in seen:
            seen.add(node)
            node = next(parent for parent in edges[node] if waiting_on[parent] > 0)
        raise FieldViolation(
            f"requests[{node}].depends_on_refs",
            f"the references form a cycle through the job with ref {requests[node].ref!r}",
        )
