"""One chaos run: start the cluster, produce while injecting faults, drain, check, report.

Phases as in Jepsen's queue tests: load with faults -> heal (each fault heals itself) ->
drain (bounded) -> final reads. The report is a plain dict so it prints as a table and
saves as JSON unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from jobqueue import AsyncClient, JobInfo, JobQueueError
from tests.fault import checker, faults
from tests.fault.cluster import Cluster, running_cluster
from tests.fault.fault_worker import QUEUE
from tests.fault.producer import Producer, ProducerPlan, summary
from tests.fault.profiles import Profile

logger = logging.getLogger(__name__)

DRAIN_POLL_S = 0.1
WAIT_FACTOR = 4
EXAMPLES = 10


async def drained_at(target: str, acknowledged: int, bound_s: float) -> float | None:
    """The unix time the queue had nothing ready, delayed or leased and every acknowledged
    job was finished; None if that did not happen within `bound_s`."""
    deadline = time.monotonic() + bound_s
    async with AsyncClient(target, timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                (stats,) = await client.stats(QUEUE)
                if stats.queued == stats.scheduled == stats.active == 0 and (
                    stats.completed + stats.dead >= acknowledged
                ):
                    return time.time()
            except JobQueueError:
                pass  # a server restarting: the bound, not one failed call, decides
            await asyncio.sleep(DRAIN_POLL_S)
    return None


def fault_plan(profile: Profile, rng: random.Random) -> list[faults.PlannedFault]:
    config = profile.cluster
    return faults.plan(
        profile.faults,
        profile.fault_window,
        rng,
        servers=config.servers,
        workers=config.workers,
        lease_s=config.lease_s,
        sweep_s=config.sweep_s,
    )


async def run(profile: Profile, seed: int, work_dir: Path) -> dict[str, Any]:
    """Runs `profile` with `seed`; the plan and payloads come from one seeded RNG."""
    rng = random.Random(seed)
    planned = fault_plan(profile, rng)
    producer_plan = ProducerPlan(
        run_id=f"s{seed}", jobs=profile.jobs, duration_s=profile.duration_s,
        max_attempts=profile.cluster.max_attempts, lease_s=profile.cluster.lease_s,
    )  # fmt: skip
    started = time.time()
    async with running_cluster(profile.cluster, work_dir) as cluster:
        producer = Producer(cluster.target, producer_plan, rng)
        injector = faults.Injector(cluster, planned)
        produced, events = await asyncio.gather(producer.run(), injector.run())
        healed = max([event.healed for event in events] + [produced.finished])
        backlog = await _backlog(cluster.target)
        # Wait well past the bound: the figure comes from the jobs' finish times below, and
        # a slow drain should be measured, not cut off.
        await drained_at(cluster.target, len(produced.acknowledged), WAIT_FACTOR * profile.drain_bound_s)
        jobs = await checker.read_jobs(cluster.target, produced.acknowledged.values())
        restarts = _worker_restarts(cluster)
    records = checker.read_records(sorted(work_dir.glob("worker-*.log")))
    window = checker.explain_window(profile.cluster.lease_s, profile.cluster.sweep_s)
    verdict = checker.check(jobs, records, events, window)
    done = _last_finish(jobs)
    report = _report(profile, seed, started, healed, done, summary(produced), events, verdict, restarts)
    report["backlog_at_last_fault"] = backlog
    return report


async def _backlog(target: str) -> int | None:
    """Jobs not yet finished when the last fault healed (None if stats failed then)."""
    try:
        async with AsyncClient(target, timeout=2.0) as client:
            (stats,) = await client.stats(QUEUE)
    except JobQueueError:
        return None
    return stats.queued + stats.scheduled + stats.active


def _last_finish(jobs: dict[str, JobInfo | None]) -> float | None:
    """When the last acknowledged job finished (Redis's clock, this machine), None if one never did."""
    times = [job.finish_time.timestamp() if job and job.finish_time else None for job in jobs.values()]
    return None if not times or None in times else max(t for t in times if t is not None)


def _worker_restarts(cluster: Cluster) -> int:
    return sum(slot.generation - 1 for slot in cluster.workers)


def _report(
    profile: Profile,
    seed: int,
    started: float,
    healed: float,
    done: float | None,
    produced: dict[str, Any],
    events: list[faults.FaultEvent],
    verdict: checker.Verdict,
    restarts: int,
) -> dict[str, Any]:
    drain_s = None if done is None else round(max(0.0, done - healed), 2)
    report: dict[str, Any] = {
        "profile": profile.name,
        "seed": seed,
        "jobs_planned": profile.jobs,
        "enqueues_acknowledged": verdict.acknowledged,
        "completed": verdict.completed,
        "dead": verdict.dead,
        "lost": len(verdict.lost),
        "left_active": len(verdict.left_active),
        "double_completed": len(verdict.double_completed),
        "executions_per_job": dict(sorted(verdict.executions.items())),
        "deliveries_per_job": dict(sorted(verdict.deliveries.items())),
        "duplicate_jobs": verdict.duplicates,
        "duplicates_explained": verdict.duplicates_explained,
        "duplicates_unexplained": len(verdict.unexplained),
        "acks_refused": verdict.acks_refused,
        "executions_of_unacknowledged_jobs": verdict.unknown_executions,
        "faults": dict(Counter(str(event.kind) for event in events)),
        "worker_restarts": restarts,
        "producer": produced,
        "drain_seconds_after_last_fault": drain_s,
        "drain_bound_seconds": profile.drain_bound_s,
        "run_seconds": round(time.time() - started, 1),
        "examples": {
            "lost": verdict.lost[:EXAMPLES],
            "left_active": verdict.left_active[:EXAMPLES],
            "double_completed": verdict.double_completed[:EXAMPLES],
            "unexplained_duplicates": verdict.unexplained[:EXAMPLES],
        },
        "fault_events": [event.as_dict() for event in events],
    }
    report["failures"] = failures(report)
    return report


def failures(report: dict[str, Any]) -> list[str]:
    """The pass criteria; an empty list is a pass."""
    found = []
    for name in ("lost", "left_active", "double_completed", "duplicates_unexplained"):
        if report[name]:
            found.append(f"{name} = {report[name]}")
    if report["producer"]["idempotency_violations"]:
        found.append("an idempotency key named two jobs")
    drain = report["drain_seconds_after_last_fault"]
    if drain is None or drain > report["drain_bound_seconds"]:
        found.append(f"not drained within {report['drain_bound_seconds']} s of the last fault (took {drain})")
    return found
