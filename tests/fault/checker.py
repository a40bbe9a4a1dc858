"""The checker: every acknowledged job read back, set against what the workers recorded.

Definitions (docs/reliability.md explains them at more length):

- acknowledged: a job whose id an Enqueue response named (the producer's key -> id map).
- lost: acknowledged, and after the drain not COMPLETED or DEAD (missing, still queued,
  scheduled or active). Must be 0.
- left active: the lost jobs still ACTIVE, i.e. held by a lease nobody will settle. Must be 0.
- double-completed: a job the server completed for more than one delivery. The server keeps
  one state and one result, so this is observed two ways, and a job counts if either shows:
  (a) more than one worker was told its ack succeeded (the workers log confirmations per
  job); (b) the stored result does not name the job's last delivery: the result records the
  attempt and pid that produced it, and only the last delivery holds the current lease
  token, so a result from an earlier attempt means a stale token was accepted; a result
  from an execution no worker logged is counted too. Must be 0.
- executions: handler starts per job (S lines), a histogram. A job run more than once is a
  duplicate; it is *explained* when every execution but the completing one overlaps a fault
  that could have cut its lease: one hitting its own worker process (kill, pause, cut,
  stall), or one every job feels (server kill, Valkey kill or pause, server-Valkey cut or
  stall), within [start - 0.5 s, start + lease + 2 sweeps + 1 s].
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue import AsyncClient, JobInfo, JobState, NotFound
from tests.fault.faults import FaultEvent

READ_CONCURRENCY = 64
EXPLAIN_BEFORE_S = 0.5
EXPLAIN_SLACK_S = 1.0


@dataclass
class Execution:
    job_id: str
    attempt: int
    pid: int
    started: float
    ended: float | None = None


@dataclass
class WorkerRecords:
    executions: dict[str, list[Execution]] = field(default_factory=lambda: defaultdict(list))
    confirmed: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))


def read_records(paths: Iterable[Path]) -> WorkerRecords:
    """Parses the workers' execution logs (format in tests/fault/fault_worker.py)."""
    records = WorkerRecords()
    for path in paths:
        for line in path.read_text().splitlines():
            _parse(records, line.split())
    return records


def _parse(records: WorkerRecords, parts: list[str]) -> None:
    if len(parts) < 5:
        return  # the last line of a killed process may be torn
    kind, job_id, attempt, pid, at = parts[:5]
    if kind == "S":
        records.executions[job_id].append(Execution(job_id, int(attempt), int(pid), float(at)))
    elif kind == "E":
        for execution in records.executions[job_id]:
            if execution.attempt == int(attempt) and execution.pid == int(pid):
                execution.ended = float(at)
    elif kind == "A":
        records.confirmed[job_id].append(int(pid))
    elif kind == "R":
        records.refused[job_id].append((int(pid), float(at)))


async def read_jobs(target: str, job_ids: Iterable[str]) -> dict[str, JobInfo | None]:
    """GetStatus for every id (None when NOT_FOUND), a bounded number at a time."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)
    jobs: dict[str, JobInfo | None] = {}
    async with AsyncClient(target, timeout=10) as client:

        async def read(job_id: str) -> None:
            async with gate:
                try:
                    jobs[job_id] = await client.get(job_id)
                except NotFound:
                    jobs[job_id] = None

        await asyncio.gather(*(read(job_id) for job_id in job_ids))
    return jobs


@dataclass
class Verdict:
    acknowledged: int = 0
    completed: int = 0
    dead: int = 0
    lost: list[str] = field(default_factory=list)
    left_active: list[str] = field(default_factory=list)
    double_completed: list[str] = field(default_factory=list)
    executions: Counter[int] = field(default_factory=Counter)
    deliveries: Counter[int] = field(default_factory=Counter)
    duplicates: int = 0
    duplicates_explained: int = 0
    unexplained: list[str] = field(default_factory=list)
    acks_refused: int = 0
    unknown_executions: int = 0


def check(
    jobs: dict[str, JobInfo | None],
    records: WorkerRecords,
    events: list[FaultEvent],
    explain_window_s: float,
) -> Verdict:
    verdict = Verdict(acknowledged=len(jobs))
    for job_id, job in jobs.items():
        _check_state(verdict, job_id, job)
        runs = records.executions.get(job_id, [])
        verdict.executions[len(runs)] += 1
        if job is not None:
            verdict.deliveries[job.attempts] += 1
        if _double_completed(job, runs, records.confirmed.get(job_id, [])):
            verdict.double_completed.append(job_id)
        if len(runs) > 1:
            verdict.duplicates += 1
            if _explained(job, runs, events, explain_window_s):
                verdict.duplicates_explained += 1
            else:
                verdict.unexplained.append(job_id)
    verdict.acks_refused = sum(len(refusals) for refusals in records.refused.values())
    verdict.unknown_executions = sum(1 for job_id in records.executions if job_id not in jobs)
    return verdict


def _check_state(verdict: Verdict, job_id: str, job: JobInfo | None) -> None:
    if job is not None and job.state is JobState.COMPLETED:
        verdict.completed += 1
    elif job is not None and job.state is JobState.DEAD:
        verdict.dead += 1
    else:
        verdict.lost.append(job_id)
        if job is not None and job.state is JobState.ACTIVE:
            verdict.left_active.append(job_id)


def _double_completed(job: JobInfo | None, runs: list[Execution], confirmed: list[int]) -> bool:
    if len(confirmed) > 1:
        return True
    if job is None or job.state is not JobState.COMPLETED:
        return False
    result = job.result or {}
    attempt, pid = result.get("attempt"), result.get("pid")
    if attempt != job.attempts:
        return True  # an ack from an earlier delivery won: a stale lease token was accepted
    return not any(run.attempt == attempt and run.pid == pid and run.ended is not None for run in runs)


def _explained(job: JobInfo | None, runs: list[Execution], events: list[FaultEvent], window_s: float) -> bool:
    winner = (job.result or {}) if job is not None else {}
    for run in runs:
        if run.attempt == winner.get("attempt") and run.pid == winner.get("pid"):
            continue
        low, high = run.started - EXPLAIN_BEFORE_S, run.started + window_s
        if not any(
            (event.scope_pid is None or event.scope_pid == run.pid)
            and event.started <= high
            and event.healed >= low
            for event in events
        ):
            return False
    return True


def explain_window(lease_s: float, sweep_s: float) -> float:
    return lease_s + 2 * sweep_s + EXPLAIN_SLACK_S
